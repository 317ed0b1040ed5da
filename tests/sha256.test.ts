/** The pure SHA-256 against node:crypto (FIPS 180-4 vectors and random messages of every padding case). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { sha256Hex } from '../src/math/sha256.ts';

test('sha256Hex equals node:crypto', () => {
  assert.equal(sha256Hex('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  assert.equal(sha256Hex(''), 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
  for (let length = 0; length < 200; length++) {
    const data = randomBytes(length);
    assert.equal(sha256Hex('64x64:', data), createHash('sha256').update('64x64:').update(data).digest('hex'), `length ${length}`);
  }
  const big = randomBytes(3 * 1024 * 1024 + 7);
  assert.equal(sha256Hex(big), createHash('sha256').update(big).digest('hex'));
});
