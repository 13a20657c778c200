"""A small C launcher for single-container nodes: the same sandbox as the shell launcher in ``_pods``
(mount + pid namespace, overlay over ``/``, private /tmp, bind mounts, chroot), in one process instead of about
ten (unshare, sh, five mounts, mkdir, chroot, env). Process start-up is most of a short node's cost.

It is compiled once per engine home with the host's C compiler (``cc``); without one, ``_pods`` keeps using
the shell launcher, which behaves the same, only slower. The node's spec is a file of NUL-separated
``key``/``value`` records, so values may hold any character but NUL.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import threading
from pathlib import Path

__all__ = ["LAUNCHER_SOURCE", "build_launcher", "write_spec"]

LAUNCHER_SOURCE = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_ITEMS 4096
static char *env[MAX_ITEMS], *args[MAX_ITEMS], *bind_src[256], *bind_dst[256];
static int n_env, n_args, n_bind;
static char *merged, *upper, *work, *tmpdir, *cwd, *ready;

static void die(const char *what) { fprintf(stderr, "driftloop sandbox: %s: %s\n", what, strerror(errno)); _exit(1); }

static void mkdirs(const char *path) {
    char buf[4096]; snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) if (*p == '/') { *p = 0; mkdir(buf, 0755); *p = '/'; }
    mkdir(buf, 0755);
}

static void inside(char *out, size_t size, const char *path) { snprintf(out, size, "%s%s", merged, path); }

static void read_spec(const char *file) {
    int fd = open(file, O_RDONLY); if (fd < 0) die("open spec");
    struct stat st; if (fstat(fd, &st) < 0) die("stat spec");
    char *data = malloc(st.st_size + 1); if (!data) die("malloc");
    ssize_t got = 0; while (got < st.st_size) { ssize_t r = read(fd, data + got, st.st_size - got); if (r <= 0) die("read spec"); got += r; }
    data[st.st_size] = 0; close(fd);
    char *p = data, *end = data + st.st_size;
    while (p < end) {
        char *key = p; p += strlen(p) + 1; if (p >= end) break;
        char *value = p; p += strlen(p) + 1;
        if (!strcmp(key, "merged")) merged = value; else if (!strcmp(key, "upper")) upper = value;
        else if (!strcmp(key, "work")) work = value; else if (!strcmp(key, "tmp")) tmpdir = value;
        else if (!strcmp(key, "cwd")) cwd = value; else if (!strcmp(key, "ready")) ready = value;
        else if (!strcmp(key, "env") && n_env < MAX_ITEMS - 1) env[n_env++] = value;
        else if (!strcmp(key, "arg") && n_args < MAX_ITEMS - 1) args[n_args++] = value;
        else if (!strcmp(key, "bind") && n_bind < 255) { bind_src[n_bind] = value; bind_dst[n_bind] = p; p += strlen(p) + 1; n_bind++; }
    }
}

static void run_command(void) {
    const char *path = "/usr/local/bin:/usr/bin:/bin";
    for (int i = 0; i < n_env; i++) if (!strncmp(env[i], "PATH=", 5)) path = env[i] + 5;
    if (strchr(args[0], '/')) { execve(args[0], args, env); }
    else {
        char candidate[4096], dirs[8192]; snprintf(dirs, sizeof dirs, "%s", path);
        for (char *dir = strtok(dirs, ":"); dir; dir = strtok(NULL, ":")) {
            snprintf(candidate, sizeof candidate, "%s/%s", dir, args[0]);
            if (access(candidate, X_OK) == 0) execve(candidate, args, env);
        }
    }
    fprintf(stderr, "driftloop sandbox: %s: command not found\n", args[0]); _exit(127);
}

int main(int argc, char **argv) {
    if (argc != 2) { fprintf(stderr, "usage: %s SPEC\n", argv[0]); return 2; }
    read_spec(argv[1]);
    if (!merged || !upper || !work || !tmpdir || !cwd || !ready || n_args == 0) { fprintf(stderr, "driftloop sandbox: incomplete spec\n"); return 2; }
    env[n_env] = NULL; args[n_args] = NULL;
    mkdirs(upper); mkdirs(work); mkdirs(merged); mkdirs(tmpdir);
    if (chmod(tmpdir, 01777) < 0) die("chmod /tmp");
    if (unshare(CLONE_NEWNS | CLONE_NEWPID) < 0) die("unshare");
    if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make / private");
    pid_t child = fork();
    if (child < 0) die("fork");
    if (child > 0) {
        int status; while (waitpid(child, &status, 0) < 0) if (errno != EINTR) die("waitpid");
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    char options[8192], target[4096];
    snprintf(options, sizeof options, "lowerdir=/,upperdir=%s,workdir=%s", upper, work);
    if (mount("overlay", merged, "overlay", 0, options) < 0) die("mount overlay");
    inside(target, sizeof target, "/proc"); if (mount("proc", target, "proc", 0, NULL) < 0) die("mount proc");
    inside(target, sizeof target, "/dev"); if (mount("/dev", target, NULL, MS_BIND | MS_REC, NULL) < 0) die("bind /dev");
    inside(target, sizeof target, "/sys"); if (mount("/sys", target, NULL, MS_BIND | MS_REC, NULL) < 0) die("bind /sys");
    inside(target, sizeof target, "/tmp"); if (mount(tmpdir, target, NULL, MS_BIND, NULL) < 0) die("bind /tmp");
    for (int i = 0; i < n_bind; i++) {
        inside(target, sizeof target, bind_dst[i]); mkdirs(target);
        if (mount(bind_src[i], target, NULL, MS_BIND | MS_REC, NULL) < 0) die(bind_dst[i]);
    }
    int marker = open(ready, O_CREAT | O_WRONLY, 0644); if (marker < 0) die("ready marker"); close(marker);
    if (chroot(merged) < 0) die("chroot");
    mkdirs(cwd);
    if (chdir(cwd) < 0) die("chdir");
    run_command();
    return 127;
}
"""

_build_lock = threading.Lock()


def build_launcher(bin_dir: Path) -> Path | None:
    """Compile the launcher into ``bin_dir`` (once per source version); None when no C compiler works."""
    digest = hashlib.sha256(LAUNCHER_SOURCE.encode()).hexdigest()[:12]
    binary = bin_dir / f"sandbox-{digest}"
    with _build_lock:
        if binary.exists():
            return binary
        compiler = shutil.which("cc") or shutil.which("gcc")
        if compiler is None:
            return None
        bin_dir.mkdir(parents=True, exist_ok=True)
        source = bin_dir / f"sandbox-{digest}.c"
        source.write_text(LAUNCHER_SOURCE)
        partial = binary.with_suffix(".partial")
        # static first: no dynamic loader at each node's start (~10 % of the launcher's CPU); else dynamic
        for flags in (["-O2", "-static"], ["-O2"]):
            try:
                built = subprocess.run(
                    [compiler, *flags, "-o", str(partial), str(source)], capture_output=True, timeout=120
                )
            except (OSError, subprocess.TimeoutExpired):
                return None
            if built.returncode == 0:
                break
        else:
            return None
        partial.replace(binary)
        return binary


def write_spec(path: Path, records: list[tuple[str, ...]]) -> None:
    """Write ``(key, value[, value2])`` records NUL-separated; values must not contain NUL."""
    parts = [part for record in records for part in record]
    for record in records:
        if any("\0" in part for part in record):
            raise ValueError(f"{record[0]} value contains a NUL byte")
    path.write_bytes("\0".join(parts).encode() + b"\0")
