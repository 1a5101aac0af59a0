/** Order statistics and number formats for the benchmark table. */

/** The `p`-quantile (0 to 1) of `samples` by the nearest-rank method. */
export const quantile = (samples: ArrayLike<number>, p: number): number => {
  const sorted = Float64Array.from(samples).sort()
  if (sorted.length === 0) return Number.NaN
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))
  return sorted[rank] ?? Number.NaN
}

export const median = (samples: ArrayLike<number>): number => quantile(samples, 0.5)

/** Formats milliseconds with one decimal: "123.4 ms". */
export const ms = (value: number): string => `${value.toFixed(1)} ms`

/** Formats microseconds with two decimals: "1.23 µs". */
export const us = (value: number): string => `${value.toFixed(2)} µs`

/**
 * Formats `engine / sdk` as "0.52×" (two significant digits below 0.1), or "n/a" when either
 * side is missing or `sdk` is zero.
 */
export const ratio = (engine: number, sdk: number): string => {
  if (!Number.isFinite(engine) || !Number.isFinite(sdk) || sdk === 0) return "n/a"
  const value = engine / sdk
  return `${Math.abs(value) < 0.1 ? value.toPrecision(2) : value.toFixed(2)}×`
}

/** Formats a byte count in KB (1,024 bytes) with one decimal. */
export const kb = (bytes: number): string => `${(bytes / 1024).toFixed(1)} KB`
