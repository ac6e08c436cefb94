# Copyright (C) ngx_cef_module developers
# SPDX-License-Identifier: BSD-2-Clause
"""cef-sync load on a full disk.  At every level of free space a load that
does not fit fails with exit 3 and the disk-full message, leaves no tmp-*
or other file behind, and the previous generation keeps serving.  Readers
of a generation never need a new block: on a full disk the 1000th nginx
worker opening the store must not die of SIGBUS either.

Small filesystems are real ones mounted for each test (we are root): a
tmpfs with a size, and an ext4 image with 1 KB blocks on a loop device,
which can be filled to the kilobyte."""

import errno
import os
import subprocess
import sys

import pytest

from store_helpers import Store, deltas, snapshot

KB = 1024
MB = 1024 * KB

OLD = 20           # profiles in the generation that must survive
NEW = 10000        # profiles in the load that does not fit: about 1.7 MB


def _mount(kind, tmp_path, mnt):
    mnt.mkdir()
    if kind == "tmpfs":
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m,mode=0755",
                        "tmpfs", str(mnt)], check=True)
        return
    img = tmp_path / "ext4.img"
    with open(img, "wb") as f:
        f.truncate(16 * MB)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-b", "1024", "-m", "0",
                    str(img)], check=True)
    # -o loop detaches the loop device again at umount
    subprocess.run(["mount", "-o", "loop", str(img), str(mnt)], check=True)


@pytest.fixture
def small_fs(tmp_path):
    """A factory: small_fs("tmpfs"|"ext4") -> the mount point; unmounted
    at teardown whatever the test did."""
    mounted = []

    def make(kind):
        mnt = tmp_path / ("mnt-%d" % len(mounted))
        _mount(kind, tmp_path, mnt)
        mounted.append(mnt)
        return mnt

    yield make

    for mnt in mounted:
        r = subprocess.run(["umount", str(mnt)], capture_output=True)
        if r.returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], check=True)


def _free(mnt):
    os.sync()
    s = os.statvfs(mnt)
    return s.f_bavail * s.f_frsize


def _fill_to(mnt, level):
    """Leave exactly `level` bytes available to a writer on mnt: one big
    filler to within 64 KB, then a block per file (a big file's extent
    tree can take a block more than asked; a one-block file cannot)."""
    fill = os.path.join(mnt, "fill")
    os.makedirs(fill, exist_ok=True)
    bsize = os.statvfs(mnt).f_frsize
    fd = os.open(os.path.join(fill, "big"), os.O_RDWR | os.O_CREAT, 0o600)
    try:
        for _ in range(16):
            free, size = _free(mnt), os.fstat(fd).st_size
            if free < level:
                os.ftruncate(fd, max(0, size - (level - free) - 32 * KB))
            elif free > level + 64 * KB:
                try:
                    os.posix_fallocate(fd, size, free - level - 32 * KB)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    os.ftruncate(fd, size)
            else:
                break
    finally:
        os.close(fd)

    n = 0
    while _free(mnt) > level:
        fd = os.open(os.path.join(fill, "b%d" % n), os.O_RDWR | os.O_CREAT,
                     0o600)
        os.posix_fallocate(fd, 0, bsize)
        os.close(fd)
        n += 1
    assert _free(mnt) == level


def _unfill(mnt):
    subprocess.run(["rm", "-rf", os.path.join(mnt, "fill")], check=True)


def _tree(store):
    """Every file under the store with its size; write.lock only by name:
    it holds the pid of the last writer, whose digits vary."""
    out = {}
    for root, dirs, files in os.walk(store.dir):
        for f in dirs + files:
            p = os.path.join(root, f)
            rel = os.path.relpath(p, store.dir)
            out[rel] = (
                os.readlink(p) if os.path.islink(p) else
                None if os.path.isdir(p) or rel == "write.lock"
                else os.path.getsize(p))
    return out


def _assert_disk_full(r):
    err = r.stderr.decode()
    assert r.returncode == 3, (r.returncode, err)
    assert err.count("\n") == 1 and err.startswith("cef-sync: -: "), err
    assert "No space left on device" in err and "disk full" in err, err


def _assert_old_serves(store, before, tree):
    assert _tree(store) == tree
    assert store.stat() == before
    rc, p = store.get(key="email:u7@example.com")
    assert rc == 0 and p["attrs"]["snap"] == "old", p
    assert store.verify().returncode == 0


@pytest.mark.parametrize("kind,level", [
    ("tmpfs", 0), ("tmpfs", 4 * KB), ("tmpfs", 32 * KB), ("tmpfs", 1 * MB),
    # tmpfs counts whole pages: 1 KB free needs 1 KB blocks
    ("ext4", 0), ("ext4", 1 * KB), ("ext4", 4 * KB), ("ext4", 32 * KB),
    ("ext4", 1 * MB),
])
def test_load_on_a_full_disk(small_fs, kind, level):
    mnt = small_fs(kind)
    store = Store(mnt)
    assert store.load(snapshot(OLD, "old")).returncode == 0
    before, tree = store.stat(), _tree(store)

    _fill_to(mnt, level)
    _assert_disk_full(store.load(snapshot(NEW, "new")))
    _assert_old_serves(store, before, tree)

    # nothing is wedged: with room again the same load goes through
    _unfill(mnt)
    r = store.load(snapshot(NEW, "new"))
    assert r.returncode == 0, r.stderr
    assert store.get(key="email:u7@example.com")[1]["attrs"]["snap"] == "new"
    assert sorted(os.listdir(store.dir)) == ["current", "gen-2", "write.lock"]


@pytest.mark.parametrize("kind", ["tmpfs", "ext4"])
def test_every_phase_of_a_load_fails_cleanly(small_fs, kind):
    """Levels spread over all the space the load needs, up to one block
    short of it, so that the disk fills in every phase: the lock file,
    the data file's first pages, the profiles, the index, the commit."""
    mnt = small_fs(kind)
    store = Store(mnt)
    assert store.load(snapshot(OLD, "old")).returncode == 0
    before, tree = store.stat(), _tree(store)

    # what the new generation takes: the same load into a second store
    os.mkdir(mnt / "probe")
    probe = Store(mnt / "probe")
    assert probe.load(snapshot(NEW, "new")).returncode == 0
    gen = os.path.join(probe.dir, "gen-1")
    need = sum(os.stat(os.path.join(gen, f)).st_blocks * 512
               for f in os.listdir(gen))
    subprocess.run(["rm", "-rf", str(probe.tmp)], check=True)
    assert need > 1 * MB

    block = os.statvfs(mnt).f_frsize
    levels = sorted({need * i // 24 // block * block for i in range(24)}
                    | {need - block})
    for level in levels:
        _fill_to(mnt, level)
        _assert_disk_full(store.load(snapshot(NEW, "new")))
        _assert_old_serves(store, before, tree)
        _unfill(mnt)


READERS = r"""
import ctypes, sys
lmdb = ctypes.CDLL("liblmdb.so.0")
env = ctypes.c_void_p()
assert lmdb.mdb_env_create(ctypes.byref(env)) == 0
MDB_RDONLY, MDB_NOTLS = 0x20000, 0x200000
rc = lmdb.mdb_env_open(env, sys.argv[1].encode(), MDB_RDONLY | MDB_NOTLS,
                       0o644)
assert rc == 0, rc
txns = []
for i in range(int(sys.argv[2])):
    t = ctypes.c_void_p()
    rc = lmdb.mdb_txn_begin(env, None, MDB_RDONLY, ctypes.byref(t))
    assert rc == 0, rc
    txns.append(t)
print(len(txns))
"""


@pytest.mark.parametrize("kind", ["tmpfs", "ext4"])
def test_readers_on_a_full_disk(small_fs, kind):
    """Each nginx worker takes a reader slot in the generation's lock.mdb,
    written through a shared map: its pages must be allocated when the
    generation is made, not when the 62nd worker arrives on a full disk."""
    mnt = small_fs(kind)
    store = Store(mnt)
    assert store.load(snapshot(OLD, "old")).returncode == 0
    gen = os.path.realpath(os.path.join(store.dir, "current"))
    lock = os.stat(os.path.join(gen, "lock.mdb"))
    assert lock.st_blocks * 512 >= lock.st_size, \
        "lock.mdb is sparse: %d of %d bytes allocated" % (
            lock.st_blocks * 512, lock.st_size)

    _fill_to(mnt, 0)
    # one process holding 1000 read transactions stands in for 1000 workers
    r = subprocess.run([sys.executable, "-c", READERS, gen, "1000"],
                       capture_output=True)
    assert r.returncode == 0 and r.stdout == b"1000\n", (r.returncode,
                                                         r.stderr)
    rc, p = store.get(key="email:u7@example.com")
    assert rc == 0 and p["attrs"]["snap"] == "old"


def test_apply_allocates_an_old_lock_file(small_fs):
    """A generation written before lock.mdb was allocated in full (made
    here by punching its holes back) is completed by the next apply, so
    a store fed only by deltas is safe too."""
    mnt = small_fs("tmpfs")
    store = Store(mnt)
    assert store.load(snapshot(OLD, "old")).returncode == 0
    lock = os.path.join(os.path.realpath(os.path.join(store.dir, "current")),
                        "lock.mdb")
    subprocess.run(["fallocate", "--punch-hole", "--offset", "4096",
                    "--length", str(os.stat(lock).st_size - 4096), lock],
                   check=True)
    assert os.stat(lock).st_blocks * 512 == 4096

    r = store.apply(deltas([{"seq": 1, "op": "patch", "id": "p1",
                             "set": {"nps": 3}}]))
    assert r.returncode == 0, r.stderr
    st = os.stat(lock)
    assert st.st_blocks * 512 >= st.st_size
