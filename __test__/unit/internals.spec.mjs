// What src/internals.ts assumes of Node's own objects, checked on each Node
// line the native suites run on (20, 22, 24): a Node that changes one fails
// here, by name, before anything subtler breaks.
import test from 'ava'
import net from 'node:net'
import { once } from 'node:events'
import { listen, closeServer } from '../helpers/peers.mjs'

async function connectedPair(t) {
  const server = net.createServer()
  const port = await listen(server)
  const accepted = once(server, 'connection')
  const client = net.connect(port, '127.0.0.1')
  await once(client, 'connect')
  const [peer] = await accepted
  t.teardown(() => {
    client.destroy()
    peer.destroy()
    return closeServer(server)
  })
  return { client, peer }
}

test("a connected net.Socket's _handle is libuv's stream: fd, onread, readStart/readStop, open, writeQueueSize, owner_symbol", async (t) => {
  const { client } = await connectedPair(t)
  const handle = client._handle
  t.true(Number.isInteger(handle.fd) && handle.fd > 0)
  t.is(typeof handle.onread, 'function')
  for (const method of ['readStart', 'readStop', 'open', 'close']) t.is(typeof handle[method], 'function', method)
  t.is(handle.writeQueueSize, 0)
  t.truthy(Object.getOwnPropertySymbols(handle).find((s) => s.description === 'owner_symbol'))
})

test("net.Socket keeps the size of the last queued write under a 'lastWriteQueueSize' symbol, and times out through _onTimeout/_unrefTimer", async (t) => {
  const { client } = await connectedPair(t)
  t.truthy(Object.getOwnPropertySymbols(client).find((s) => s.description === 'lastWriteQueueSize'))
  t.is(typeof net.Socket.prototype._onTimeout, 'function')
  t.is(typeof net.Socket.prototype._unrefTimer, 'function')
})

test("a listening net.Server's _handle takes onconnection", async (t) => {
  const server = net.createServer()
  await listen(server)
  t.teardown(() => closeServer(server))
  t.is(typeof server._handle.onconnection, 'function')
})

test("net.Socket keeps its onread option under the symbols kBuffer, kBufferCb and kBufferGen, and its handle has useUserBuffer", async (t) => {
  const buffer = Buffer.alloc(8)
  const socket = new net.Socket({ onread: { buffer, callback() {} } })
  const names = Object.getOwnPropertySymbols(socket).map((s) => s.description)
  for (const name of ['kBuffer', 'kBufferCb', 'kBufferGen']) t.true(names.includes(name), name)
  t.is(socket[Object.getOwnPropertySymbols(socket).find((s) => s.description === 'kBuffer')], buffer)
  const { client } = await connectedPair(t)
  t.is(typeof client._handle.useUserBuffer, 'function')
})
