/**
 * A minimal POSIX ustar writer (regular files only), enough to hand a folder over HTTP as one download.
 * Each file is a 512-byte header — name, mode, size and mtime as NUL-terminated octal, the header's checksum
 * (the byte sum with the checksum field read as spaces), type "0", magic "ustar\0" version "00" — then its
 * bytes padded to 512; two zero blocks end the archive.
 */

export const TAR_BLOCK = 512;

const encoder = new TextEncoder();

/** `value` as `width - 1` octal digits and a NUL, as ustar's numeric fields are written. */
function octal(value: number, width: number): string {
  const digits = value.toString(8);
  if (digits.length > width - 1) throw new Error(`${value} does not fit a ${width}-byte tar field`);
  return digits.padStart(width - 1, "0") + "\0";
}

/** The ustar header of one regular file (its path below 100 bytes, mode 0644). */
export function tarHeader(path: string, size: number, mtimeSeconds: number): Uint8Array {
  const name = encoder.encode(path);
  if (name.length > 100) {
    throw new Error(`tar: the path ${path} is over ustar's 100 bytes; use a shorter name`);
  }
  const header = new Uint8Array(TAR_BLOCK);
  const put = (offset: number, text: string | Uint8Array) =>
    header.set(typeof text === "string" ? encoder.encode(text) : text, offset);
  put(0, name);
  put(100, octal(0o644, 8));
  put(108, octal(0, 8)); // uid
  put(116, octal(0, 8)); // gid
  put(124, octal(size, 12));
  put(136, octal(Math.floor(mtimeSeconds), 12));
  put(148, "        "); // the checksum counts its own field as spaces
  put(156, "0");
  put(257, "ustar\0");
  put(263, "00");
  const checksum = header.reduce((sum, byte) => sum + byte, 0);
  put(148, octal(checksum, 7) + " ");
  return header;
}

/** The archive's pieces in order (headers, file bytes, padding, the end): stream them or join them. */
export function* tarChunks(
  files: Iterable<[path: string, bytes: Uint8Array]>,
  mtimeSeconds: number,
): Generator<Uint8Array> {
  for (const [path, bytes] of files) {
    yield tarHeader(path, bytes.length, mtimeSeconds);
    yield bytes;
    const padding = (TAR_BLOCK - bytes.length % TAR_BLOCK) % TAR_BLOCK;
    if (padding > 0) yield new Uint8Array(padding);
  }
  yield new Uint8Array(2 * TAR_BLOCK);
}
