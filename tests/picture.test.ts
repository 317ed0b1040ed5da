/** Reading the user's pictures: orientation, alpha, colour spaces, fit, limits, bad files, hashes. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import sharp from 'sharp';
import { readPicture, pictureHash, loadPicture, MAX_PICTURE_PIXELS } from '../src/io/picture.ts';
import { LatentBlendError } from '../src/errors.ts';

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'latentblend-picture-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const pixel = (image: { width: number; data: Uint8Array }, x: number, y: number) => [...image.data.subarray((y * image.width + x) * 3, (y * image.width + x) * 3 + 3)];
const near = (actual: number[], expected: number[], tolerance: number, what: string) =>
  assert.ok(actual.every((v, i) => Math.abs(v - expected[i]!) <= tolerance), `${what}: ${JSON.stringify(actual)} vs ${JSON.stringify(expected)}`);

/** A 40×20 picture: left half red, right half blue. */
async function halves(): Promise<Buffer> {
  const data = Buffer.alloc(40 * 20 * 3);
  for (let y = 0; y < 20; y++) for (let x = 0; x < 40; x++) data.set(x < 20 ? [255, 0, 0] : [0, 0, 255], (y * 40 + x) * 3);
  return sharp(data, { raw: { width: 40, height: 20, channels: 3 } }).png().toBuffer();
}

test('cover crops the centre, contain pads with white, no size keeps the picture', async () => {
  const path = join(dir, 'halves.png');
  writeFileSync(path, await halves());
  const cover = await readPicture(path, { width: 16, height: 16, fit: 'cover' });
  assert.equal(cover.width, 16);
  assert.equal(cover.data.length, 16 * 16 * 3);
  near(pixel(cover, 0, 8), [255, 0, 0], 2, 'cover left');
  near(pixel(cover, 15, 8), [0, 0, 255], 2, 'cover right');
  const contain = await readPicture(path, { width: 16, height: 16, fit: 'contain' });
  near(pixel(contain, 8, 0), [255, 255, 255], 0, 'contain pads the top');
  near(pixel(contain, 2, 8), [255, 0, 0], 2, 'contain left');
  const whole = await readPicture(path);
  assert.deepEqual([whole.width, whole.height], [40, 20]);
});

test('EXIF orientation is applied', async () => {
  // Stored 40×20 (red left) with orientation 6 (rotate 90° clockwise to view): 20×40, red on top.
  const path = join(dir, 'rotated.jpg');
  writeFileSync(path, await sharp(await halves()).withMetadata({ orientation: 6 }).jpeg({ quality: 95 }).toBuffer());
  const image = await readPicture(path);
  assert.deepEqual([image.width, image.height], [20, 40]);
  near(pixel(image, 10, 2), [255, 0, 0], 40, 'top is red');
  near(pixel(image, 10, 37), [0, 0, 255], 40, 'bottom is blue');
});

test('alpha is flattened onto white; grey, 16-bit and CMYK become 8-bit sRGB', async () => {
  const transparent = join(dir, 'alpha.png');
  writeFileSync(transparent, await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 255, g: 0, b: 0, alpha: 0 } } }).png().toBuffer());
  near(pixel(await readPicture(transparent), 3, 3), [255, 255, 255], 0, 'transparent → white');
  const half = join(dir, 'half-alpha.png');
  writeFileSync(half, await sharp({ create: { width: 8, height: 8, channels: 4, background: { r: 0, g: 0, b: 0, alpha: 0.5 } } }).png().toBuffer());
  near(pixel(await readPicture(half), 3, 3), [128, 128, 128], 2, 'half-transparent black → grey');

  const grey16 = join(dir, 'grey16.png');
  writeFileSync(grey16, await sharp(Buffer.from([0, 255, 128, 60]), { raw: { width: 2, height: 2, channels: 1 } }).toColourspace('grey16').png().toBuffer());
  const greyMeta = await sharp(grey16).metadata();
  assert.deepEqual([greyMeta.depth, greyMeta.channels], ['ushort', 1], 'the test picture is 16-bit grey');
  const grey = await readPicture(grey16);
  assert.equal(grey.data.length, 12);
  assert.deepEqual([...grey.data], [0, 0, 0, 255, 255, 255, 128, 128, 128, 60, 60, 60]);
  const rgb16 = join(dir, 'rgb16.png');
  const levels = [0, 255, 128, 60, 10, 20, 30, 40, 50, 60, 70, 80];
  writeFileSync(rgb16, await sharp(Buffer.from(levels), { raw: { width: 2, height: 2, channels: 3 } }).toColourspace('rgb16').png().toBuffer());
  assert.equal((await sharp(rgb16).metadata()).depth, 'ushort', 'the test picture is 16-bit RGB');
  assert.deepEqual([...(await readPicture(rgb16)).data], levels);

  const cmyk = join(dir, 'cmyk.jpg');
  writeFileSync(cmyk, await sharp({ create: { width: 8, height: 8, channels: 3, background: { r: 220, g: 20, b: 20 } } }).toColourspace('cmyk').jpeg().toBuffer());
  assert.equal((await sharp(cmyk).metadata()).space, 'cmyk', 'the test picture is CMYK');
  const red = pixel(await readPicture(cmyk), 4, 4);
  assert.ok(red[0]! > 150 && red[1]! < 80 && red[2]! < 80, `CMYK red stays red: ${JSON.stringify(red)}`);
});

test('PNG, JPEG, WebP, TIFF and AVIF are read', async () => {
  const source = sharp({ create: { width: 16, height: 16, channels: 3, background: { r: 40, g: 120, b: 200 } } });
  for (const [extension, encode] of [
    ['png', (image: ReturnType<typeof sharp>) => image.png()],
    ['jpg', (image: ReturnType<typeof sharp>) => image.jpeg({ quality: 95 })],
    ['webp', (image: ReturnType<typeof sharp>) => image.webp({ lossless: true })],
    ['tiff', (image: ReturnType<typeof sharp>) => image.tiff()],
    ['avif', (image: ReturnType<typeof sharp>) => image.avif({ lossless: true })],
  ] as const) {
    const path = join(dir, `colour.${extension}`);
    writeFileSync(path, await encode(source.clone()).toBuffer());
    near(pixel(await readPicture(path, { width: 8, height: 8 }), 4, 4), [40, 120, 200], 6, extension);
  }
});

test('an animated picture gives its first frame', async () => {
  const frames = Buffer.alloc(8 * 16 * 3);
  for (let k = 0; k < 8 * 8; k++) frames.set([0, 200, 0], k * 3); // frame 1 green
  for (let k = 8 * 8; k < 8 * 16; k++) frames.set([200, 0, 200], k * 3); // frame 2 magenta
  const path = join(dir, 'anim.webp');
  writeFileSync(path, await sharp(frames, { raw: { width: 8, height: 16, channels: 3, pageHeight: 8 } }).webp({ lossless: true, loop: 0 }).toBuffer());
  assert.equal((await sharp(path).metadata()).pages, 2, 'the test picture has two frames');
  const image = await readPicture(path, { width: 8, height: 8 });
  near(pixel(image, 4, 4), [0, 200, 0], 2, 'first frame');
});

test('a 30000×30000 picture is refused from its header, bad files get one line naming them', async () => {
  // A real 8×8 PNG whose header (IHDR, CRC fixed) claims 30000×30000; decoding would need 2.7 GB.
  const huge = join(dir, 'huge.png');
  const png = Buffer.from(await sharp({ create: { width: 8, height: 8, channels: 3, background: '#000' } }).png().toBuffer());
  png.writeUInt32BE(30000, 16);
  png.writeUInt32BE(30000, 20);
  png.writeUInt32BE(crc32(png.subarray(12, 29)), 29);
  writeFileSync(huge, png);
  assert.deepEqual([(await sharp(huge, { limitInputPixels: false }).metadata()).width], [30000], 'the header says 30000');
  assert.ok(30000 * 30000 > MAX_PICTURE_PIXELS);
  await assert.rejects(readPicture(huge, { width: 64, height: 64 }), (error: Error) => {
    assert.ok(error instanceof LatentBlendError);
    assert.match(error.message, /huge\.png: 30000×30000 pixels is too large/);
    return true;
  });
  const text = join(dir, 'notes.png');
  writeFileSync(text, 'not a picture at all');
  const truncated = join(dir, 'truncated.png');
  const whole = await halves();
  writeFileSync(truncated, whole.subarray(0, whole.length - 40));
  for (const [path, pattern] of [
    [text, /notes\.png: not a picture that can be read/],
    [truncated, /truncated\.png: the picture cannot be decoded/],
    [join(dir, 'missing.png'), /missing\.png: cannot read the picture \(no such file\)/],
    [dir, /cannot read the picture \(is a folder/],
  ] as const) {
    await assert.rejects(readPicture(path, { width: 8, height: 8 }), (error: Error) => {
      assert.ok(error instanceof LatentBlendError, String(error));
      assert.match(error.message, pattern);
      assert.ok(!error.message.includes('\n'), 'one line');
      return true;
    });
  }
});

test('pictureHash follows the content, not the name', async () => {
  const a = join(dir, 'a.png');
  const b = join(dir, 'b.png');
  writeFileSync(a, await halves());
  writeFileSync(b, await halves());
  assert.equal(await pictureHash(a), await pictureHash(b));
  writeFileSync(b, await sharp(await halves()).negate().png().toBuffer());
  assert.notEqual(await pictureHash(a), await pictureHash(b));
  const loaded = await loadPicture(a, { width: 8, height: 8 });
  assert.equal(loaded.hash, await pictureHash(a));
  assert.match(loaded.hash, /^[0-9a-f]{64}$/);
});
