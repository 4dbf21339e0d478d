/**
 * Platforms as OCI and Docker name them (Go's GOOS/GOARCH, plus an ARM
 * variant), for picking this machine's image out of a multi-platform index
 * and for the config `import` writes.
 */
export interface Platform {
  os: string
  architecture: string
  variant?: string
}

/** Node's process.arch → Go's GOARCH. */
const GO_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm64: 'arm64',
  arm: 'arm',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  mips: 'mips',
  mipsel: 'mipsle',
  loong64: 'loong64',
}

/** This machine's platform (`linux/amd64` here); arm gets its variant (`v7`). */
export function hostPlatform(): Platform {
  const architecture = GO_ARCH[process.arch] ?? process.arch
  const platform: Platform = { os: process.platform, architecture }
  if (architecture === 'arm') {
    const v = (process.config.variables as Record<string, unknown>).arm_version
    if (typeof v === 'string' || typeof v === 'number') platform.variant = `v${v}`
  }
  return platform
}

/** The normalised variant: arm64's only variant is v8, which may be left out. */
function variantOf(p: Platform): string | undefined {
  if (p.architecture === 'arm64' && (p.variant === undefined || p.variant === '' || p.variant === 'v8')) return undefined
  return p.variant === '' ? undefined : p.variant
}

/** Whether an image for `candidate` runs on `host`: same os and architecture, and the same variant when both name one. */
export function platformMatches(candidate: Platform, host: Platform = hostPlatform()): boolean {
  if (candidate.os !== host.os || candidate.architecture !== host.architecture) return false
  const a = variantOf(candidate)
  const b = variantOf(host)
  return a === undefined || b === undefined || a === b
}

/** `linux/arm/v7` */
export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant === undefined || p.variant === '' ? '' : `/${p.variant}`}`
}
