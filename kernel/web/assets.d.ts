// The dashboard's assets are imported as text (`with { type: "text" }`) and
// embedded in the kernel binary by `bun build --compile`.
declare module "*.css" {
  const text: string;
  export default text;
}
declare module "*/app.js" {
  const text: string;
  export default text;
}
