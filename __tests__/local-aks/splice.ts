// Joins two sockets both ways and closes both when either ends: the core of every TCP
// relay here (the API front, the pod network's host side). pod-network-relay.mjs repeats
// these lines because it runs under plain node inside a pod's network namespace.
import type { Socket } from 'node:net'

export function splice(a: Socket, b: Socket, onClose: () => void = () => undefined): void {
  const close = (): void => {
    onClose()
    a.destroy()
    b.destroy()
  }
  a.on('error', close).on('close', close)
  b.on('error', close).on('close', close)
  a.pipe(b)
  b.pipe(a)
}
