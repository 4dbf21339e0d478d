/**
 * Every path-escape attack of apply-safety.test.ts again, with the layer
 * given as a byte range of a file that the apply's worker thread reads
 * itself (src/archive/file-source.ts), as `load` applies a
 * docker-archive's layers: that path must refuse and confine exactly as
 * the stream does.
 */
process.env.STRATA_APPLY_SAFETY_VIA = 'file'
await import('./apply-safety.test.js')
