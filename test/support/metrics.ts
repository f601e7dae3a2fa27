// Reads Prometheus text exposition: the sum of a metric's samples whose labels include the given ones.
export function metricSum(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const match = /^[^{ ]+(?:\{(.*)\})? ([^ ]+)$/.exec(line);
    if (!match) continue;
    const have = new Map<string, string>();
    for (const m of (match[1] ?? "").matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)) have.set(m[1] as string, m[2] as string);
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(match[2]);
  }
  return sum;
}
