export function percent(value: number | null | undefined, digits = 0): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  return `${(value * 100).toFixed(digits)}%`;
}

export function seconds(value: number | null | undefined): string {
  if (value === null || value === undefined || Number.isNaN(value)) return '—';
  if (value < 10) return `${value.toFixed(1)} s`;
  if (value < 120) return `${Math.round(value)} s`;
  return `${(value / 60).toFixed(1)} min`;
}

export function count(value: number): string {
  return value.toLocaleString('en-US');
}

/** A stable, distinct hue for the i-th class. */
export function classHue(index: number): number {
  return Math.round((index * 137.508) % 360);
}

/** A time the server gave as milliseconds since 1970 (UTC), in the browser's locale. */
export function dateTime(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  return new Date(ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function bytes(value: number): string {
  if (value < 1024) return `${value} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = value / 1024;
  let unit = 0;
  while (v >= 1024 && unit < units.length - 1) {
    v /= 1024;
    unit += 1;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[unit]}`;
}
