/**
 * A second process for the devicemapper crash test: opens the driver on a
 * data root and creates one layer (`node devicemapper-child.js ROOT
 * OPTIONS_JSON ID PARENT`). With STRATA_DM_FAILPOINT set it is killed
 * midway by the driver itself.
 */
import { openDevmapperGraph } from '../../src/graphdriver/devicemapper/index.js'

const [root, options, id, parent] = process.argv.slice(2)
const d = await openDevmapperGraph({ root: root!, options: JSON.parse(options!) as Record<string, string> })
await d.create(id!, parent === undefined || parent === '' ? null : parent)
await d.cleanup()
