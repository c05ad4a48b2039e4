const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatDate(iso: string | null | undefined): string {
  return iso ? dateTime.format(new Date(iso)) : '—';
}

export function formatBytes(n: number | null): string {
  if (n === null) return '—';
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatDuration(ms: number | undefined): string {
  if (ms === undefined) return '';
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

import { pinnedRange, type UpgradePin } from '../../../../libs/contracts/src';

export const DAYS = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];

export function formatWindow(w: { dayOfWeek: number; startHourUtc: number; hours: number } | null): string {
  if (!w) return 'no window';
  return `${DAYS[w.dayOfWeek]} ${String(w.startHourUtc).padStart(2, '0')}:00 UTC for ${w.hours} h`;
}

/** `pinned to 1.8.x` / `not pinned`: what a cluster on `version` with `pin` may be moved to by automatic upgrades and waves. */
export function formatPin(pin: UpgradePin, version: string): string {
  const range = pinnedRange(pin, version);
  return range ? `pinned to ${range}` : 'not pinned';
}

/** The pin's choices, worded for a cluster on `version` (the wizard's, before there is one: an example). */
export function pinChoices(version: string | undefined): { value: UpgradePin; label: string }[] {
  const v = version ?? '1.8.7';
  const eg = version ? '' : 'e.g. ';
  return [
    { value: 'none', label: 'None: any version' },
    { value: 'patch', label: `Patch releases only: the same major.minor (${eg}${pinnedRange('patch', v)})` },
    { value: 'minor', label: `Minor releases too: the same major (${eg}${pinnedRange('minor', v)})` },
  ];
}

/** `203.0.113.0/24 (office), 2001:db8::/32` / `none: nobody is admitted`. */
export function describeAllowlist(entries: readonly { cidr: string; description: string }[]): string {
  if (entries.length === 0) return 'none: nobody is admitted';
  return entries.map((e) => (e.description ? `${e.cidr} (${e.description})` : e.cidr)).join(', ');
}
