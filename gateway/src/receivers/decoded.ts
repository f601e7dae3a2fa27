// A received message: decoded, or the reason it could not be, and always the bytes as received.
export type Decoded<T> = { raw: Buffer; message: T; error?: undefined } | { raw: Buffer; message?: undefined; error: string };

export function decodeWith<T>(decode: (bytes: Uint8Array) => T): (raw: Buffer) => Decoded<T> {
  return (raw: Buffer) => {
    try {
      return { raw, message: decode(raw) };
    } catch (err) {
      return { raw, error: err instanceof Error ? err.message : String(err) };
    }
  };
}
