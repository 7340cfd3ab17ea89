// File-descriptor accounting for leak checks.
import { readdirSync, readlinkSync } from 'node:fs'

/** Number of open file descriptors of this process. */
export function countFds() {
  return readdirSync('/proc/self/fd').length
}

/** fd -> link target (e.g. 'socket:[1234]'), for diagnostics. */
export function listFds() {
  const out = {}
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      out[fd] = readlinkSync(`/proc/self/fd/${fd}`)
    } catch {}
  }
  return out
}

/** Number of open sockets of this process. */
export function countSockets() {
  return Object.values(listFds()).filter((l) => l.startsWith('socket:')).length
}

/**
 * Polls until countFds() <= target (fds are released asynchronously after
 * 'close'); resolves the last count.
 */
export async function settleFds(target, { timeout = 5000 } = {}) {
  const deadline = Date.now() + timeout
  let n = countFds()
  while (n > target && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 25))
    if (global.gc) global.gc()
    n = countFds()
  }
  return n
}
