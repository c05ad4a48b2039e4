/**
 * Version pins: how far automatic upgrades and SRE upgrade waves may move a cluster from the
 * version it runs. `patch`: only to versions with the same major.minor; `minor`: the same major;
 * `none`: anywhere. A customer's own POST /upgrade is not bound by it (their choice).
 */
export const UPGRADE_PINS = ['none', 'patch', 'minor'] as const;
export type UpgradePin = (typeof UPGRADE_PINS)[number];

/** The numeric major.minor.patch a catalog version starts with (`1.8.7-rolling` → [1, 8, 7]); null when it has none. */
export function versionNumbers(version: string): [number, number, number] | null {
  const m = /^(\d+)\.(\d+)\.(\d+)/.exec(version);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : null;
}

/** The versions a pin keeps a cluster on `current` to, as people write them: `1.8.x` (patch), `1.x` (minor); null for none. */
export function pinnedRange(pin: UpgradePin, current: string): string | null {
  if (pin === 'none') return null;
  const n = versionNumbers(current);
  if (!n) return `${current} (${pin} pin)`;
  return pin === 'patch' ? `${n[0]}.${n[1]}.x` : `${n[0]}.x`;
}

/**
 * The range `target` falls outside of when the cluster runs `current` with `pin` (`1.8.x`), or
 * null when the pin allows it. A version without a numeric prefix is outside every pin: whether
 * it stays inside cannot be told.
 */
export function crossedPin(pin: UpgradePin, current: string, target: string): string | null {
  const range = pinnedRange(pin, current);
  if (range === null) return null;
  const from = versionNumbers(current);
  const to = versionNumbers(target);
  if (!from || !to) return range;
  const same = pin === 'patch' ? from[0] === to[0] && from[1] === to[1] : from[0] === to[0];
  return same ? null : range;
}
