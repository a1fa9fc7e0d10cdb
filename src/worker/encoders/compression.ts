import { Transform, type TransformCallback } from 'node:stream';
import { constants as zlibConstants, createGzip, gzipSync } from 'node:zlib';
import { Encoder } from '@toondepauw/node-zstd';
import type { ExportCompression } from '../../exports/formats';

/**
 * The compressors of export files. gzip is node:zlib's. zstd is @toondepauw/node-zstd (libzstd
 * through Node-API, its binary shipped in the npm registry's platform package: nothing is
 * downloaded or built at install). Its encoder compresses a buffer at a time, off the event loop;
 * a file is written as a sequence of zstd frames, one per ZSTD_BLOCK_BYTES of input, which the
 * zstd format defines as one stream: `zstd -d` and every decoder read it as one file.
 */

/** zstd's default level: about gzip's ratio at several times its speed. */
export const ZSTD_LEVEL = 3;
/** Input per zstd frame: large enough that the frames cost no ratio, small enough to keep memory flat. */
export const ZSTD_BLOCK_BYTES = 4 * 1024 * 1024;

/** A whole-file compressor for a csv or jsonl file. */
export function fileCompressor(compression: Exclude<ExportCompression, 'none'>): Transform {
  return compression === 'gzip' ? createGzip({ level: zlibConstants.Z_DEFAULT_COMPRESSION }) : new ZstdFrames();
}

/** One encoder for every Parquet page: encodeSync keeps nothing between calls. */
const pageEncoder = new Encoder(ZSTD_LEVEL);

/** Parquet's page compressors, by codec: synchronous, as the Parquet writer calls them. */
export const PARQUET_COMPRESSORS = {
  GZIP: (input: Uint8Array): Uint8Array => gzipSync(input),
  ZSTD: (input: Uint8Array): Uint8Array => pageEncoder.encodeSync(Buffer.from(input.buffer, input.byteOffset, input.byteLength)),
};

class ZstdFrames extends Transform {
  readonly #encoder = new Encoder(ZSTD_LEVEL);
  #block: Buffer[] = [];
  #blockBytes = 0;

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#block.push(chunk);
    this.#blockBytes += chunk.length;
    if (this.#blockBytes < ZSTD_BLOCK_BYTES) callback();
    else this.#compressBlock().then(() => callback(), callback);
  }

  override _flush(callback: TransformCallback): void {
    this.#compressBlock().then(() => callback(), callback);
  }

  async #compressBlock(): Promise<void> {
    const block = Buffer.concat(this.#block);
    this.#block = [];
    this.#blockBytes = 0;
    // An empty file is still one (empty) frame, so that every zstd file decodes.
    this.push(await this.#encoder.encode(block));
  }
}
