// Bearer-token check shared by both transports (constant-time comparison).
import { createHash, timingSafeEqual } from "node:crypto";

export class BearerAuth {
  private readonly expected: Buffer | undefined;

  constructor(token: string | undefined) {
    this.expected = token === undefined ? undefined : createHash("sha256").update(`Bearer ${token}`).digest();
  }

  get enabled(): boolean {
    return this.expected !== undefined;
  }

  /** True when no token is configured or the header is exactly "Bearer <token>". */
  check(header: string | undefined): boolean {
    if (this.expected === undefined) return true;
    if (header === undefined) return false;
    return timingSafeEqual(createHash("sha256").update(header).digest(), this.expected);
  }
}
