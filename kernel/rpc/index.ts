export { RpcServer, type Connection, type Method, type MethodTable, type MethodContext } from "./server.ts";
export { METHOD_NAMES, methodTable, type MethodName, type SystemFacts } from "./methods.ts";
export { listen, parseListen, type Listener, type ListenSpec } from "./transports.ts";
export { LineSplitter } from "./framing.ts";
