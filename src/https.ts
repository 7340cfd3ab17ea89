// `ktls.https`: node:https's shape (createServer, Agent, request, get) on ktls.
import * as http from 'node:http'
import * as https from 'node:https'
import { Agent, HttpsServer, createHttpsServer } from './http'

export { Agent, HttpsServer as Server, createHttpsServer as createServer }

/** The agent `request` and `get` use when given none (keep-alive, as Node 20's). */
export const globalAgent: Agent = new Agent({ keepAlive: true })

type Callback = (res: http.IncomingMessage) => void

export function request(url: string | URL, options?: https.RequestOptions, callback?: Callback): http.ClientRequest
export function request(url: string | URL, callback?: Callback): http.ClientRequest
export function request(options: https.RequestOptions, callback?: Callback): http.ClientRequest
export function request(...args: unknown[]): http.ClientRequest {
  return callWithAgent(https.request, args)
}

export function get(url: string | URL, options?: https.RequestOptions, callback?: Callback): http.ClientRequest
export function get(url: string | URL, callback?: Callback): http.ClientRequest
export function get(options: https.RequestOptions, callback?: Callback): http.ClientRequest
export function get(...args: unknown[]): http.ClientRequest {
  return callWithAgent(https.get, args)
}

/** Calls node:https with `agent` defaulting to ours, in either argument form. */
function callWithAgent(fn: (...args: never[]) => http.ClientRequest, args: unknown[]): http.ClientRequest {
  const at = typeof args[0] === 'string' || args[0] instanceof URL ? 1 : 0
  if (at === 1 && (args.length < 2 || typeof args[1] === 'function')) args.splice(1, 0, {})
  args[at] = { agent: globalAgent, ...(args[at] as https.RequestOptions) }
  return (fn as (...args: unknown[]) => http.ClientRequest)(...args)
}
