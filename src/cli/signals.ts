/** Waiting for the user to stop a long-running verb (explore, serve). */

/** Resolves with the signal's name at the first SIGINT or SIGTERM. */
export function interrupted(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string): void => {
      process.off('SIGINT', onInt)
      process.off('SIGTERM', onTerm)
      resolve(sig)
    }
    const onInt = (): void => on('SIGINT')
    const onTerm = (): void => on('SIGTERM')
    process.on('SIGINT', onInt)
    process.on('SIGTERM', onTerm)
  })
}
