// permessage-deflate interoperability (issue 15): `cerebrum serve --compression` with Node's
// `ws` (its default client offer) and with headless Chromium's own WebSocket. Each client
// negotiates the extension, publishes a frame large enough that it compresses it, and reads
// back the publication the server compressed; a server without the flag negotiates nothing.
//
// Environment as dashboard.test.mjs: CEREBRUM_BIN (required), CHROMIUM_PATH (default
// /usr/bin/chromium), E2E_REQUIRE_BROWSER=1 (fail instead of skipping when Chromium is absent).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromiumPath, missingPiece, serve, stop } from './server.mjs';

const missing = missingPiece('compression interop test');

/** A publication of about 3 kB: over `ws`'s 1 kB threshold and the server's 256 bytes. */
function publication(id) {
  return {
    type: 'chat.msg',
    channel: 'chat:deflate',
    messageId: id,
    ack: true,
    payload: { text: `${id}: ` + 'interleaving beats blocked practice. '.repeat(80) },
  };
}

/** Subscribes, publishes `id`, and resolves with the publication as delivered back. */
async function roundTripWithWs(url, id) {
  const { default: WebSocket } = await import('ws');
  const socket = new WebSocket(url); // perMessageDeflate is offered by default
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const delivered = new Promise((resolve, reject) => {
    socket.on('message', (data) => {
      const frame = JSON.parse(data.toString());
      if (frame.type === 'subscribed') socket.send(JSON.stringify(publication(id)));
      if (frame.type === 'chat.msg' && frame.messageId === id) resolve(frame);
    });
    socket.once('close', (code) => reject(new Error(`closed ${code}`)));
  });
  socket.send(JSON.stringify({ type: 'subscribe', payload: { channel: 'chat:deflate' } }));
  const frame = await delivered;
  const extensions = socket.extensions;
  socket.close();
  return { frame, extensions };
}

test('permessage-deflate with Node ws and headless Chromium', { skip: missing ?? false, timeout: 120000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'cerebrum-e2e-deflate-'));
  const server = await serve('127.0.0.1:0', dataDir, ['--compression']);
  let browser;
  try {
    // Node ws: negotiated, and a compressed round trip arrives whole.
    const viaWs = await roundTripWithWs(server.url, 'from-node-ws');
    assert.match(viaWs.extensions, /^permessage-deflate/);
    assert.deepEqual(viaWs.frame.payload, publication('from-node-ws').payload);
    assert.equal(viaWs.frame.offset, 1);

    // Chromium's WebSocket, from a page of the server's own origin.
    const { chromium } = await import('playwright-core');
    browser = await chromium.launch({
      executablePath: chromiumPath,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
        '--disable-quic', '--no-first-run', '--disable-component-update', '--disable-sync'],
    });
    const page = await browser.newPage();
    await page.goto(`http://${server.host}/`);
    const viaChromium = await page.evaluate(async ([url, sent]) => {
      const socket = new WebSocket(url);
      return await new Promise((resolve, reject) => {
        socket.onerror = () => reject(new Error('socket error'));
        socket.onclose = (event) => reject(new Error(`closed ${event.code}`));
        socket.onopen = () => socket.send(JSON.stringify({ type: 'subscribe', payload: { channel: 'chat:deflate' } }));
        socket.onmessage = (event) => {
          const frame = JSON.parse(event.data);
          if (frame.type === 'subscribed') socket.send(JSON.stringify(sent));
          if (frame.type === 'chat.msg' && frame.messageId === sent.messageId) {
            socket.onclose = null;
            socket.close();
            resolve({ frame, extensions: socket.extensions });
          }
        };
      });
    }, [server.url, publication('from-chromium')]);
    assert.match(viaChromium.extensions, /^permessage-deflate/);
    assert.deepEqual(viaChromium.frame.payload, publication('from-chromium').payload);
    assert.equal(viaChromium.frame.offset, 2);
  } finally {
    await browser?.close();
    await stop(server);
    rmSync(dataDir, { recursive: true, force: true });
  }

  // Without the flag the same offers get no extension, and everything still works.
  const plainDir = mkdtempSync(join(tmpdir(), 'cerebrum-e2e-plain-'));
  const plain = await serve('127.0.0.1:0', plainDir);
  try {
    const viaWs = await roundTripWithWs(plain.url, 'uncompressed');
    assert.equal(viaWs.extensions, '');
    assert.deepEqual(viaWs.frame.payload, publication('uncompressed').payload);
  } finally {
    await stop(plain);
    rmSync(plainDir, { recursive: true, force: true });
  }
});
