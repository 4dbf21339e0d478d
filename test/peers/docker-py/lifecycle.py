"""docker-py (Debian's python3-docker) through an Engine API server: the
image and container lifecycle a Python user drives, every result written
as one JSON document on stdout for test/api-docker-py.test.ts to check.

Usage: python3 lifecycle.py unix:///path/to.sock REGISTRY/REPO
(REGISTRY/REPO:1 must hold the busybox image the server has as busybox).
"""
import io
import json
import sys
import tarfile
import threading
import time

import docker

c = docker.DockerClient(base_url=sys.argv[1], version='auto', timeout=120)
remote = sys.argv[2]
out = {'api': c.api.api_version, 'ping': c.ping(), 'version': c.version()['ApiVersion']}

# Events while everything below happens, read from the stream as it comes.
events = []
stream = c.events(decode=True)


def follow():
    try:
        for e in stream:
            events.append([e.get('Type'), e.get('Action'), e.get('Actor', {}).get('Attributes', {}).get('name', '')])
    except Exception:
        pass


watcher = threading.Thread(target=follow, daemon=True)
watcher.start()
time.sleep(0.5)

# Images: inspect, tag, list, history.
img = c.images.get('busybox')
out['id'] = img.id
img.tag('pytag', '1')
out['tags'] = sorted(t for i in c.images.list() for t in i.tags)
out['history'] = len(img.history())

# Pull from the registry (the low-level stream, to see its messages), then again: up to date.
msgs = list(c.api.pull(remote, tag='1', stream=True, decode=True))
out['pull_statuses'] = [m.get('status') for m in msgs if 'id' not in m or m.get('status', '').startswith('Pulling from')]
out['pull_layer_statuses'] = sorted(set(m['status'] for m in msgs if 'id' in m and not m['status'].startswith('Pulling from')))
out['pulled'] = c.images.get(remote + ':1').id
out['pull_again'] = [m.get('status') for m in c.api.pull(remote, tag='1', stream=True, decode=True)][-1]

# A container that runs to its end: create, start, wait, logs (the two streams apart), remove.
ct = c.containers.create('busybox', ['sh', '-c', 'echo out; echo err >&2; exit 3'], name='py-run', environment={'A': '1'}, labels={'from': 'py'})
ct.reload()
out['created'] = [ct.status, ct.name, 'A=1' in ct.attrs['Config']['Env']]
ct.start()
out['wait'] = ct.wait(timeout=60)
out['logs'] = [ct.logs(stdout=True, stderr=False).decode(), ct.logs(stdout=False, stderr=True).decode()]
out['listed'] = [x.name for x in c.containers.list(all=True, filters={'label': 'from=py'})]

# A long one: exec, archive both ways, diff, rename, pause, stats, restart, kill, stop.
lr = c.containers.run('busybox', ['sleep', '300'], detach=True, name='py-long')
lr.reload()
out['long_status'] = lr.status
ex = lr.exec_run(['sh', '-c', 'echo hi; echo there; exit 2'])
out['exec'] = [ex.exit_code, ex.output.decode()]
dm = lr.exec_run(['sh', '-c', 'echo a; echo b >&2'], demux=True)
out['exec_demux'] = [dm.output[0].decode(), dm.output[1].decode()]

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode='w') as tf:
    data = b'from docker-py\n'
    info = tarfile.TarInfo('hello.txt')
    info.size = len(data)
    info.mode = 0o640
    tf.addfile(info, io.BytesIO(data))
out['put_archive'] = lr.put_archive('/tmp', buf.getvalue())
chunks, stat = lr.get_archive('/tmp/hello.txt')
with tarfile.open(fileobj=io.BytesIO(b''.join(chunks))) as tf:
    member = tf.getmember('hello.txt')
    out['get_archive'] = [stat['name'], stat['size'], oct(member.mode), tf.extractfile(member).read().decode()]
try:
    lr.put_archive('/no/such/dir', buf.getvalue())
    out['put_missing'] = 'accepted'
except docker.errors.NotFound:
    out['put_missing'] = 'NotFound'
out['diff'] = sorted([d['Path'], d['Kind']] for d in lr.diff())

lr.rename('py-long2')
lr.reload()
out['renamed'] = lr.name
lr.pause()
lr.reload()
out['paused'] = lr.status
lr.unpause()
lr.reload()
out['unpaused'] = lr.status
st = lr.stats(stream=False)
out['stats'] = [st['name'], st['pids_stats'].get('current'), st['memory_stats'].get('usage', 0) > 0, st['cpu_stats']['cpu_usage']['total_usage'] > 0, st['preread'] != '0001-01-01T00:00:00Z']

started = lr.attrs['State']['StartedAt']
lr.restart(timeout=1)
lr.reload()
out['restarted'] = [lr.status, lr.attrs['State']['StartedAt'] != started]
lr.kill(signal='SIGKILL')
out['killed'] = lr.wait(timeout=60)['StatusCode']
lr.start()
lr.stop(timeout=1)
lr.reload()
out['stopped'] = [lr.status, lr.attrs['State']['ExitCode']]

# commit and export of the stopped container (its /tmp/hello.txt is in its layer).
new = lr.commit(repository='pycommit', tag='1', message='from docker-py', changes=['ENV PY=1'])
out['commit'] = [new.id == c.images.get('pycommit:1').id, 'PY=1' in new.attrs['Config']['Env']]
with tarfile.open(fileobj=io.BytesIO(b''.join(lr.export()))) as tf:
    names = tf.getnames()
    out['export'] = ['tmp/hello.txt' in names, 'bin/busybox' in names]

# save and load.
saved = b''.join(img.save())
out['saved'] = len(saved)
c.images.remove('pytag:1')
out['loaded'] = [i.id for i in c.images.load(saved)]

# system df.
df = c.df()
out['df'] = [sorted(df.keys()), len(df['Images']), sorted(x['Names'][0] for x in df['Containers'])]

# prune: the stopped containers go, then the image they kept.
pruned = c.containers.prune()
out['containers_pruned'] = len(pruned['ContainersDeleted'] or [])
out['after_prune'] = len(c.containers.list(all=True))
c.images.remove('pycommit:1')
out['images_pruned'] = c.images.prune()['ImagesDeleted']
c.images.remove(remote + ':1')

try:
    c.images.get('no-such-image')
    out['missing'] = 'found'
except docker.errors.ImageNotFound:
    out['missing'] = 'ImageNotFound'
try:
    c.volumes.create('v1')
except docker.errors.APIError as e:
    out['volume'] = [e.status_code, e.explanation]

time.sleep(1)
stream.close()
out['events'] = events
print(json.dumps(out))
