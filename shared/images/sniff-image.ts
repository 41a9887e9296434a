/**
 * Recognises an image by its magic bytes (never by a file name or a declared content type),
 * and reads its pixel size where the header makes that cheap.
 *
 * @module
 */

/** The image formats BFL is known to accept as Kontext input. */
export type ImageFormat = "png" | "jpeg" | "webp" | "gif";

export interface SniffedImage {
  format: ImageFormat;
  contentType: `image/${ImageFormat}`;
  /** Pixel size, when the header tells it; undefined when it could not be read. */
  width?: number;
  height?: number;
}

function startsWith(bytes: Uint8Array, signature: number[], offset = 0): boolean {
  if (bytes.length < offset + signature.length) return false;
  return signature.every((value, index) => bytes[offset + index] === value);
}

const ascii = (text: string) => [...text].map((c) => c.charCodeAt(0));

/** Returns the image format of `bytes`, or null when they are not a known image. */
export function sniffImage(bytes: Uint8Array): SniffedImage | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) {
    const size = bytes.length >= 24 ? { width: view.getUint32(16), height: view.getUint32(20) } : {};
    return { format: "png", contentType: "image/png", ...size };
  }
  if (startsWith(bytes, [0xff, 0xd8, 0xff])) {
    return { format: "jpeg", contentType: "image/jpeg", ...jpegSize(bytes, view) };
  }
  if (startsWith(bytes, ascii("RIFF")) && startsWith(bytes, ascii("WEBP"), 8)) {
    return { format: "webp", contentType: "image/webp", ...webpSize(bytes, view) };
  }
  if (startsWith(bytes, ascii("GIF87a")) || startsWith(bytes, ascii("GIF89a"))) {
    const size = bytes.length >= 10
      ? { width: view.getUint16(6, true), height: view.getUint16(8, true) }
      : {};
    return { format: "gif", contentType: "image/gif", ...size };
  }
  return null;
}

// Walks the JPEG segments up to the first start-of-frame marker, which holds the size.
function jpegSize(bytes: Uint8Array, view: DataView): { width?: number; height?: number } {
  let offset = 2;
  while (offset + 9 < bytes.length) {
    if (bytes[offset] !== 0xff) return {};
    const marker = bytes[offset + 1];
    if (marker === 0xff) {
      offset += 1;
      continue;
    }
    const isStartOfFrame = marker >= 0xc0 && marker <= 0xcf && ![0xc4, 0xc8, 0xcc].includes(marker);
    if (isStartOfFrame) {
      return { height: view.getUint16(offset + 5), width: view.getUint16(offset + 7) };
    }
    offset += 2 + view.getUint16(offset + 2);
  }
  return {};
}

function webpSize(bytes: Uint8Array, view: DataView): { width?: number; height?: number } {
  if (bytes.length < 30) return {};
  const chunk = String.fromCharCode(...bytes.subarray(12, 16));
  if (chunk === "VP8X") {
    const width = 1 + (view.getUint16(24, true) | (bytes[26] << 16));
    const height = 1 + (view.getUint16(27, true) | (bytes[29] << 16));
    return { width, height };
  }
  if (chunk === "VP8 ") {
    return { width: view.getUint16(26, true) & 0x3fff, height: view.getUint16(28, true) & 0x3fff };
  }
  if (chunk === "VP8L") {
    const bits = view.getUint32(21, true);
    return { width: (bits & 0x3fff) + 1, height: ((bits >> 14) & 0x3fff) + 1 };
  }
  return {};
}
