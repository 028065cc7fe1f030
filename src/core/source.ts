import { createHash, type Hash } from "node:crypto";
import { close, open, read } from "node:fs";
import { open as openFile } from "node:fs/promises";
import { Readable } from "node:stream";
import { PantriError } from "./errors.js";
import type { FileDigests } from "./hash.js";
import type { ChunkReader, PutSource, StageSource } from "../objectstores/types.js";

/** Read size for uploads: 1 MiB reads kept the socket fed with the fewest calls (measured). */
const READ_BYTES = 1 << 20;

/** What hashing found out about the content, handed to the store with it. */
type Digests = Pick<FileDigests, "size" | "sha256" | "sha1" | "md5Parts">;

/** A small file's bytes, read once for hashing and uploaded from memory (see IN_MEMORY_MAX_BYTES). */
export function bufferSource(file: string, data: Buffer, d: Digests): PutSource {
  return {
    size: data.length,
    sha256: d.sha256,
    sha1: d.sha1,
    ...(d.md5Parts ? { md5Parts: d.md5Parts } : {}),
    path: file,
    bytes: data,
    open: (start = 0, end = data.length - 1) => Readable.from([data.subarray(start, end + 1)], { objectMode: false }),
  };
}

/**
 * A file's bytes as uploaded. Unless the store checks them against the MD5s of the hashing pass
 * (md5Parts, see ObjectStore.md5PartSize), a read of the whole file is re-hashed on the way: if
 * the file changed after it was hashed, the upload fails instead of storing bytes that do not
 * match the pointer's key. The last chunk is held back until the hash matches: with a fixed
 * Content-Length, a store commits the object once it has every byte, so the check must fail
 * before the final byte leaves, not after.
 */
export function fileSource(file: string, d: Digests): PutSource {
  const { size, sha256 } = d;
  return {
    size,
    sha256,
    sha1: d.sha1,
    ...(d.md5Parts ? { md5Parts: d.md5Parts } : {}),
    path: file,
    open(start = 0, end = size - 1) {
      const whole = start === 0 && end === size - 1;
      return new FileRangeReader(file, start, end, whole && !d.md5Parts ? { sha256, size } : null);
    },
    // Unchecked reads only where the store's server checks the bytes (see ChunkReader).
    ...(d.md5Parts ? { chunks: fileChunks(file) } : {}),
  };
}

/**
 * A file's bytes as sent while they are still being hashed (ObjectStore.stageUpload): nothing to
 * check them against yet; the store's commit compares what it received with the hashing pass.
 */
export function stageSource(file: string, size: number): StageSource {
  return { size, path: file, open: (start = 0, end = size - 1) => new FileRangeReader(file, start, end, null), chunks: fileChunks(file) };
}

/** Buffers a ChunkReader cycles through: a chunk stays valid until two more were asked for. */
const CHUNK_BUFFERS = 3;

/**
 * A file's ChunkReader. Three reused buffers instead of a new one per read: Node frees big
 * Buffers only at a full GC, so a 1 GiB upload through a stream held ~30 MB of dead chunks at its
 * peak (123-133 MB RSS against 101 MB this way, same speed).
 */
function fileChunks(file: string): ChunkReader {
  return async function* (start, end) {
    const length = end + 1 - start;
    if (length <= 0) return;
    const fh = await openFile(file, "r");
    try {
      const buffers = Array.from({ length: CHUNK_BUFFERS }, () => Buffer.allocUnsafe(Math.min(READ_BYTES, length)));
      for (let done = 0, i = 0; done < length; i++) {
        const buffer = buffers[i % CHUNK_BUFFERS] as Buffer;
        const { bytesRead } = await fh.read(buffer, 0, Math.min(buffer.length, length - done), start + done);
        if (bytesRead === 0) throw endedEarly(file, length - done);
        done += bytesRead;
        yield buffer.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  };
}

function endedEarly(file: string, missing: number): PantriError {
  return new PantriError(`${file} ended ${missing} bytes early: did it change while it was being stored? Run store again`);
}

/**
 * Streams bytes start..end (inclusive) of a file with plain fs.read calls, re-hashing them in the
 * same step when asked (`expect`), so the check needs no second stream. Fails, naming the file,
 * if the file ends early.
 */
class FileRangeReader extends Readable {
  private fd = -1;
  private pos: number;
  private readonly hash: Hash | null;
  private held: Buffer | null = null;

  constructor(
    private readonly file: string,
    start: number,
    private readonly end: number,
    private readonly expect: { sha256: string; size: number } | null,
  ) {
    super({ highWaterMark: READ_BYTES });
    this.pos = start;
    this.hash = expect ? createHash("sha256") : null;
  }

  override _construct(callback: (error?: Error | null) => void): void {
    open(this.file, "r", (err, fd) => {
      this.fd = fd;
      callback(err);
    });
  }

  override _read(): void {
    const want = Math.min(READ_BYTES, this.end + 1 - this.pos);
    if (want <= 0) return this.finish();
    const buffer = Buffer.allocUnsafe(want);
    read(this.fd, buffer, 0, want, this.pos, (err, n) => {
      if (err) return this.destroy(err);
      if (n === 0) return this.destroy(endedEarly(this.file, this.end + 1 - this.pos));
      this.pos += n;
      const chunk = n === want ? buffer : buffer.subarray(0, n);
      if (!this.hash) {
        this.push(chunk);
        return;
      }
      this.hash.update(chunk);
      const previous = this.held;
      this.held = chunk;
      // The first chunk is only held: read on, since nothing was pushed to ask for more.
      if (previous) this.push(previous);
      else this._read();
    });
  }

  private finish(): void {
    if (this.expect && this.hash) {
      // Past the end: the file may have grown, but only the bytes hashed here are sent.
      if (this.hash.digest("hex") !== this.expect.sha256) {
        this.destroy(new PantriError(`${this.file} changed while it was being stored; run store again`));
        return;
      }
      if (this.held) this.push(this.held);
      this.held = null;
    }
    this.push(null);
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (this.fd < 0) return callback(err);
    close(this.fd, () => callback(err));
  }
}
