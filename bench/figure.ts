// One benchmark figure, printed beside the baseline measured in the same run.
export interface Figure {
  name: string;
  value: number;
  unit: string;
  baseline?: { name: string; value: number };
  ratio?: number;
}

export function printFigures(title: string, figures: Figure[]): void {
  console.log(`\n## ${title}`);
  for (const f of figures) {
    let line = `${f.name}: ${fmt(f.value)} ${f.unit}`;
    if (f.baseline) line += `   | baseline ${f.baseline.name}: ${fmt(f.baseline.value)} ${f.unit}`;
    const ratio = f.ratio ?? (f.baseline && f.baseline.value ? f.value / f.baseline.value : undefined);
    if (ratio !== undefined) line += `   | ratio ${ratio.toFixed(3)}`;
    console.log(line);
  }
}

function fmt(v: number): string {
  if (Number.isInteger(v)) return v.toLocaleString("en-US");
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 1 ? v.toFixed(2) : v.toPrecision(3);
}
