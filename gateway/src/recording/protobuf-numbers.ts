// protobufjs decodes 64-bit fields as Long objects whenever the `long` package can be found, even when
// the static code was generated with --force-number. Our contract's 64-bit values (sequence numbers,
// Unix milliseconds, seeds, counts) all fit in a double, so we switch the runtime to plain numbers once.
import $protobuf from "protobufjs/minimal.js";

let configured = false;

export function usePlainNumbersForInt64(): void {
  if (configured) return;
  // `util.Long` is typed as a constructor; clearing it is the documented way to drop Long support.
  ($protobuf.util as { Long: unknown }).Long = undefined;
  $protobuf.configure();
  configured = true;
}

usePlainNumbersForInt64();
