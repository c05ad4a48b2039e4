import { TIERS, dimensionForTier, type TierName } from '../../core/src';

/**
 * The price catalog: one billing dimension per tier, priced per cluster-hour.
 * Prices are integers in millionths of the currency unit so that every sum is
 * exact; amounts are rounded to the cent once, per invoice line.
 */
export const CURRENCY = 'USD';
export const MICROS_PER_UNIT = 1_000_000n;

const HOURLY_PRICE_MICROS: Record<TierName, bigint> = {
  development: 27_000n, // 0.027 per hour
  standard: 560_000n, // 0.56 per hour
  plus: 1_120_000n, // 1.12 per hour
};

export interface PriceEntry {
  tier: TierName;
  dimension: string;
  unitOfMeasure: 'hour';
  pricePerHourMicros: bigint;
}

export const PRICES: readonly PriceEntry[] = (Object.keys(TIERS) as TierName[]).map((tier) => ({
  tier,
  dimension: dimensionForTier(tier),
  unitOfMeasure: 'hour',
  pricePerHourMicros: HOURLY_PRICE_MICROS[tier],
}));

/** Decimal text of an amount in micros, e.g. 560000n -> "0.56" (trailing zeros trimmed, at least 2 decimals). */
export function formatMicros(micros: bigint): string {
  const neg = micros < 0n;
  const abs = neg ? -micros : micros;
  const whole = abs / MICROS_PER_UNIT;
  let frac = (abs % MICROS_PER_UNIT).toString().padStart(6, '0').replace(/0+$/, '');
  if (frac.length < 2) frac = frac.padEnd(2, '0');
  return `${neg ? '-' : ''}${whole}.${frac}`;
}

/**
 * The amount of a line, in cents: minutes × hourly price / 60, rounded half up
 * to the cent. Computed once per line from whole minutes, so lines and their
 * totals agree to the cent.
 */
export function lineAmountCents(minutes: bigint, pricePerHourMicros: bigint): bigint {
  // micros = minutes * price / 60; cents = micros / 10_000 → cents = minutes * price / 600_000
  const num = minutes * pricePerHourMicros;
  const den = 600_000n;
  return (num * 2n + den) / (2n * den);
}

export function formatCents(cents: bigint): string {
  const neg = cents < 0n;
  const abs = neg ? -cents : cents;
  return `${neg ? '-' : ''}${abs / 100n}.${(abs % 100n).toString().padStart(2, '0')}`;
}

/** Hours as decimal text from whole minutes, exact to 1/60 rounded to 6 places (e.g. 90 -> "1.5"). */
export function formatHours(minutes: bigint | number): string {
  const m = BigInt(minutes);
  const micro = (m * 1_000_000n * 2n + 60n) / 120n; // hours in millionths, half up
  return formatMicros(micro).replace(/\.?0+$/, '').replace(/^$/, '0') || '0';
}

/** The quantity reported to the marketplace: hours as a number with at most 6 decimals. */
export function quantityHours(minutes: number): number {
  return Math.round((minutes / 60) * 1e6) / 1e6;
}
