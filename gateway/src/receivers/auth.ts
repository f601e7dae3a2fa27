// Bearer-token check shared by both transports (constant-time comparison).
import { createHash, timingSafeEqual } from "node:crypto";

export class BearerAuth {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token === undefined ? undefined : createHash("sha256").update(token).digest();
  }

  get enabled(): boolean {
    return this.expected !== undefined;
  }

  /** True when no token is configured or the header is "Bearer <token>" (the scheme is
   *  case-insensitive, RFC 7235 §2.1; one or more spaces after it). */
  check(header: string | undefined): boolean {
    if (this.expected === undefined) return true;
    if (header === undefined) return false;
    const match = /^bearer +(\S+) *$/i.exec(header);
    if (!match) return false;
    return timingSafeEqual(createHash("sha256").update(match[1] ?? "").digest(), this.expected);
  }
}
