/** Usage errors (exit 2) as opposed to failed operations (exit 1). */
export class UsageError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'UsageError'
  }
}
