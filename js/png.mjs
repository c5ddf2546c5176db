// A minimal PNG writer (Node): 8-bit RGBA, no interlace, every row with filter 0, the
// image data deflated by node:zlib. For the CLI's heatmaps.
import { deflateSync } from 'node:zlib';

const CRC_TABLE = Uint32Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});

function crc32(bytes) {
  let c = 0xffffffff;
  for (const b of bytes) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** A chunk: length, type, data, CRC of type and data. */
function chunk(type, data) {
  const out = Buffer.alloc(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  Buffer.from(data.buffer, data.byteOffset, data.byteLength).copy(out, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** PNG bytes of a width × height RGBA image (rgba: 4 bytes per pixel, row by row). */
export function encodePng(width, height, rgba) {
  if (rgba.length !== width * height * 4) throw new RangeError(`${rgba.length} bytes for a ${width} x ${height} RGBA image`);
  const header = Buffer.alloc(13);
  header.writeUInt32BE(width, 0);
  header.writeUInt32BE(height, 4);
  header.set([8, 6, 0, 0, 0], 8);  // 8 bits, RGBA, deflate, filter set 0, no interlace
  const raw = Buffer.alloc(height * (1 + width * 4));
  for (let y = 0; y < height; y++) raw.set(rgba.subarray(y * width * 4, (y + 1) * width * 4), y * (1 + width * 4) + 1);
  return Buffer.concat([Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]), chunk('IHDR', header), chunk('IDAT', deflateSync(raw)), chunk('IEND', Buffer.alloc(0))]);
}

/** The image scaled up by whole factors (each pixel a sx × sy block). */
export function scaleImage({ width, height, rgba }, sx, sy) {
  const W = width * sx, out = new Uint8ClampedArray(W * height * sy * 4);
  for (let y = 0; y < height * sy; y++) {
    const row = Math.floor(y / sy) * width;
    for (let x = 0; x < W; x++) {
      const from = (row + Math.floor(x / sx)) * 4;
      out.set(rgba.subarray(from, from + 4), (y * W + x) * 4);
    }
  }
  return { width: W, height: height * sy, rgba: out };
}
