/**
 * One run of a container with a terminal (Config.Tty), the monitor owning
 * the pty master as containerd's shim does:
 *
 * 1. a console socket is listened on (paths.ts consoleSocketPath) and
 *    `runc create --console-socket` made: runc's init opens the pty inside
 *    the container and sends the master over that socket (SCM_RIGHTS,
 *    src/sys receiveFdNow);
 * 2. the window size the starter asked for is set on the master, the
 *    attach socket opened (attach-protocol.ts), `runc start` run;
 * 3. the master's output goes to the json log as stdout (docker logs a
 *    terminal's output so) and to every attached client; clients' input
 *    goes to the master (with Config.OpenStdin), their window sizes too;
 * 4. the monitor is a child subreaper, so the container's init, orphaned
 *    when `runc create` exits, is its child: it is reaped here (polled
 *    with waitpid WNOHANG; libuv reaps only the processes it spawned) and
 *    its status is the run's exit code;
 * 5. the output drained (the master reads EIO once every slave is
 *    closed), the clients' connections are ended and the sockets removed.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdir, rm, unlink } from 'node:fs/promises'
import { createServer, type Server, type Socket } from 'node:net'
import { ReadStream } from 'node:tty'
import type { ContainerRecord } from '../../containerdb/index.js'
import { acceptNow, becomeSubreaper, closeFd, receiveFdNow, reapNow, setWindowSize } from '../../sys/index.js'
import { FRAME_ATTACH, FRAME_RESIZE, FRAME_STDIN, FrameDecoder } from './attach-protocol.js'
import type { JsonLogWriter } from './json-log.js'
import { attachSocketPath, bundleDir, consoleSocketPath, pidFilePath, runDir } from './paths.js'
import { runcQuiet, startFailure, type RunOutcome } from './runc.js'
import { unixListen } from '../../sys/index.js'

export interface TtyRunOptions {
  root: string
  id: string
  runtime: string
  /** Hold the output from the start until the first client attaches (docker run -it attaches before the start). */
  attachFirst?: boolean
  /** The window size to start with. */
  size?: { rows: number; cols: number }
}

/** What a first client misses at most: the rest of the early output is only in the log. */
const FIRST_ATTACH_BUFFER = 1 << 20
/** A client this far behind is cut off: a stuck client must not stop the terminal. */
const CLIENT_BACKLOG = 8 << 20

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** The attach socket: clients in, output out. */
class AttachServer {
  readonly #server: Server
  /** Connections that asked for the output. */
  readonly #clients = new Set<Socket>()
  readonly #all = new Set<Socket>()
  #early: Buffer[] | undefined
  #earlySize = 0
  #master: ReadStream | undefined
  #masterFd = -1
  readonly #openStdin: boolean
  #firstCame!: () => void
  /** Settles when the first client connected. */
  readonly firstClient = new Promise<void>((resolve) => (this.#firstCame = resolve))

  constructor(attachFirst: boolean, openStdin: boolean) {
    this.#early = attachFirst ? [] : undefined
    this.#openStdin = openStdin
    this.#server = createServer((socket) => this.#accept(socket))
    this.#server.on('error', () => {})
  }

  listen(path: string): Promise<void> {
    return new Promise((resolve, reject) => {
      this.#server.once('error', reject)
      this.#server.listen(path, () => resolve())
    })
  }

  setMaster(master: ReadStream, fd: number): void {
    this.#master = master
    this.#masterFd = fd
  }

  output(chunk: Buffer): void {
    if (this.#early !== undefined) {
      if (this.#earlySize < FIRST_ATTACH_BUFFER) {
        this.#early.push(chunk)
        this.#earlySize += chunk.length
      }
      return
    }
    for (const c of this.#clients) {
      if (c.writableLength > CLIENT_BACKLOG) c.destroy()
      else c.write(chunk)
    }
  }

  #accept(socket: Socket): void {
    socket.on('error', () => {})
    socket.on('close', () => this.#clients.delete(socket))
    this.#all.add(socket)
    socket.on('close', () => this.#all.delete(socket))
    const frames = new FrameDecoder()
    socket.on('data', (chunk: Buffer) => {
      let got
      try {
        got = frames.push(chunk)
      } catch {
        socket.destroy()
        return
      }
      for (const f of got) {
        if (f.type === FRAME_ATTACH && !this.#clients.has(socket)) {
          this.#clients.add(socket)
          if (this.#early !== undefined) {
            for (const b of this.#early) socket.write(b)
            this.#early = undefined
          }
          this.#firstCame()
        } else if (f.type === FRAME_STDIN && this.#openStdin) this.#master?.write(f.payload)
        else if (f.type === FRAME_RESIZE && f.payload.length >= 4 && this.#masterFd >= 0 && this.#master?.destroyed === false) {
          try {
            setWindowSize(this.#masterFd, f.payload.readUInt16BE(0), f.payload.readUInt16BE(2))
          } catch {
            // The terminal went away meanwhile.
          }
        }
      }
    })
  }

  /** Ends every client's connection and stops listening. */
  async close(): Promise<void> {
    for (const c of this.#all) c.end()
    await new Promise<void>((resolve) => this.#server.close(() => resolve()))
  }
}

/** Waits for runc's init to connect to the console socket and send the pty master; undefined when runc ended first. */
async function receiveMaster(listener: number, runcEnded: () => boolean): Promise<number | undefined> {
  let conn: number | undefined
  try {
    for (;;) {
      const ended = runcEnded()
      conn ??= acceptNow(listener)
      if (conn !== undefined) {
        try {
          const got = receiveFdNow(conn)
          if (got !== undefined) return got.fd
        } catch {
          return undefined
        }
      }
      // One more look after runc ended: what it sent before exiting is there to read.
      if (ended) return undefined
      await sleep(5)
    }
  } finally {
    if (conn !== undefined) closeFd(conn)
  }
}

export async function runOnceTty(opts: TtyRunOptions, record: ContainerRecord, logs: JsonLogWriter, onStarted: (pid: number) => Promise<void>): Promise<RunOutcome> {
  const { root, id, runtime } = opts
  becomeSubreaper()
  const pidFile = pidFilePath(root, id)
  await unlink(pidFile).catch(() => {})
  await runcQuiet(runtime, ['delete', '--force', id])
  await mkdir(runDir(id), { recursive: true, mode: 0o700 })
  const consolePath = consoleSocketPath(id)
  await unlink(consolePath).catch(() => {})
  const listener = unixListen(consolePath)
  let master: number | undefined
  let createErr = ''
  let createCode: number
  try {
    const create = spawn(runtime, ['create', '--bundle', bundleDir(root, id), '--pid-file', pidFile, '--console-socket', consolePath, id], { stdio: ['ignore', 'ignore', 'pipe'] })
    create.stderr.on('data', (c: Buffer) => (createErr += c.toString()))
    let ended = false
    const closed = new Promise<number>((resolve) => {
      create.once('error', (err) => {
        createErr += err.message
        resolve(-1)
      })
      create.once('close', (code) => resolve(code ?? -1))
    })
    void closed.then(() => (ended = true))
    master = await receiveMaster(listener, () => ended)
    createCode = await closed
  } finally {
    closeFd(listener)
    await unlink(consolePath).catch(() => {})
  }
  if (createCode !== 0 || master === undefined) {
    if (master !== undefined) closeFd(master)
    await runcQuiet(runtime, ['delete', '--force', id])
    const why = createCode === 0 ? `${createErr}\nruntime did not send the console (pty master)` : createErr
    return { started: false, startedAtMs: 0, ...startFailure(why, createCode, record.Path, runtime) }
  }

  if (opts.size !== undefined && opts.size.rows > 0 && opts.size.cols > 0) setWindowSize(master, opts.size.rows, opts.size.cols)
  const attach = new AttachServer(opts.attachFirst === true, record.Config.OpenStdin === true)
  const sockPath = attachSocketPath(id)
  await unlink(sockPath).catch(() => {})
  await attach.listen(sockPath)
  const term = new ReadStream(master)
  attach.setMaster(term, master)
  term.on('data', (c: Buffer) => {
    logs.write('stdout', c)
    attach.output(c)
  })
  // EIO once every slave is closed: the end of the output.
  const drained = new Promise<void>((resolve) => {
    term.on('error', () => resolve())
    term.on('end', () => resolve())
    term.on('close', () => resolve())
  })

  const pid = Number(readFileSync(pidFile, 'utf8').trim())
  const startCode = await runcQuiet(runtime, ['start', id])
  let exitCode: number
  let started = false
  let startedAtMs = 0
  let error = ''
  if (startCode !== 0) {
    await runcQuiet(runtime, ['delete', '--force', id])
    exitCode = 128
    error = `OCI runtime start failed: ${runtime} start exited with ${startCode}: unknown`
  } else {
    started = true
    startedAtMs = Date.now()
    await onStarted(pid)
    exitCode = await reap(pid)
  }
  // The output written before the exit is still in the terminal: read to its end (a safety net if something keeps a slave open).
  await Promise.race([drained, sleep(2000)])
  term.destroy()
  logs.end('stdout')
  // A process that ended before its starter attached (run -t of a short command): the record says
  // Running until that client came and got the output (or, if its starter died, for 10 s).
  if (opts.attachFirst === true) await Promise.race([attach.firstClient, sleep(10_000)])
  await attach.close()
  await unlink(sockPath).catch(() => {})
  return { started, exitCode, error, startedAtMs }
}

/** The container's init, this subreaper's child once `runc create` exited: its exit status. */
async function reap(pid: number): Promise<number> {
  for (;;) {
    const status = reapNow(pid)
    if (typeof status === 'number') return status
    if (status === null) {
      // Not our child (the subreaper did not take it): all that can be known is when it is gone.
      try {
        process.kill(pid, 0)
      } catch {
        return 255
      }
    }
    await sleep(20)
  }
}

export async function removeRunDir(id: string): Promise<void> {
  await rm(runDir(id), { recursive: true, force: true }).catch(() => {})
}
