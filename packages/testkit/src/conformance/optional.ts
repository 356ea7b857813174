/** For conformance cases that need something only some stores offer (a reopen, breakable writes). */

/**
 * Run `fn` on a freshly made handle when `offers` says it has what the case needs (a store without it
 * passes the case vacuously); the handle is closed either way.
 */
export async function whenOffered<H extends { close?: () => unknown }, K extends keyof H>(
  factory: () => Promise<H>,
  key: K,
  fn: (h: H & Required<Pick<H, K>>) => Promise<void>,
): Promise<void> {
  const h = await factory();
  try {
    if (h[key] !== undefined) await fn(h as H & Required<Pick<H, K>>);
  } finally {
    await h.close?.();
  }
}
