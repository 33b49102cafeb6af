"""Start a program as a job of several communicating processes (mx.distributed over MPI).

    python -m mx.launch -n 2 train.py --lr 0.1          # 2 processes on this machine
    python -m mx.launch --hostfile hosts -n 8 train.py  # on the hosts of an MPI hostfile
    python -m mx.launch --hosts a,b -n 4 -m pkg.train   # a module instead of a script

The processes run this Python interpreter (the same path must exist on every host) under
the system's mpirun (Open MPI or MPICH), with MX_WORLD_SIZE set so that a process that
fails to join the group notices (mx.distributed.init warns; init(strict=True) raises).
A hostfile is either MPI's own format or MLX's JSON host list ([{"ssh": "host"}, ...]).
--dry-run prints the mpirun command instead of running it.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile

# the environment the processes on other hosts need to find this Python and mx
FORWARD_VARS = ("PATH", "PYTHONPATH", "LD_LIBRARY_PATH", "VIRTUAL_ENV", "CONDA_PREFIX")
FORWARD_PREFIXES = ("MX_", "MLX_", "OMP_")


def find_mpirun(explicit=None):
    """The MPI launcher to use: --mpirun, $MX_MPIRUN, then mpirun or mpiexec on PATH."""
    for candidate in (explicit, os.environ.get("MX_MPIRUN"), "mpirun", "mpiexec"):
        if candidate:
            path = shutil.which(candidate)
            if path:
                return path
    return None


def mpi_flavor(mpirun):
    """"openmpi", "mpich" (Hydra: MPICH, Intel MPI, MVAPICH) or "unknown"."""
    try:
        out = subprocess.run([mpirun, "--version"], capture_output=True, text=True, timeout=20)
        text = out.stdout + out.stderr
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if "Open MPI" in text or "OpenRTE" in text or "Open RTE" in text:
        return "openmpi"
    if "HYDRA" in text or "Intel(R) MPI" in text or "MPICH" in text:
        return "mpich"
    return "unknown"


def convert_hostfile(path, flavor):
    """The path of an MPI hostfile for `path`: MLX's JSON host lists are rewritten (one slot
    per entry) into a temporary file in the launcher's syntax; other files pass through."""
    with open(path) as f:
        text = f.read()
    try:
        hosts = json.loads(text)
    except ValueError:
        return path
    if not isinstance(hosts, list):
        raise ValueError(f"{path}: a JSON hostfile holds a list of hosts")
    counts = {}
    for h in hosts:
        name = h.get("ssh") if isinstance(h, dict) else h
        if not isinstance(name, str):
            raise ValueError(f"{path}: every host needs an \"ssh\" name, got {h!r}")
        counts[name] = counts.get(name, 0) + 1
    lines = [f"{h}:{n}" if flavor == "mpich" else f"{h} slots={n}" for h, n in counts.items()]
    fd, out = tempfile.mkstemp(prefix="mx-hosts-", suffix=".txt")
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return out


def build_command(args, mpirun, flavor, environ=None, temporary=None):
    """The mpirun command line (a list) for the parsed arguments; the paths of files made
    for it (a converted hostfile) are appended to `temporary`."""
    environ = os.environ if environ is None else environ
    cmd = [mpirun]
    remote = bool(args.hostfile or args.hosts)
    if args.n is not None:
        cmd += ["-n", str(args.n)]
    if flavor == "openmpi":
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-run-as-root")
        if not remote:
            # on one machine the user chose the count: more processes than cores is fine
            cmd.append("--oversubscribe")
    if args.hostfile:
        hostfile = convert_hostfile(args.hostfile, flavor)
        if hostfile != args.hostfile and temporary is not None:
            temporary.append(hostfile)
        cmd += ["-f" if flavor == "mpich" else "--hostfile", hostfile]
    if args.hosts:
        cmd += ["-hosts" if flavor == "mpich" else "--host", args.hosts]
    names = [v for v in environ if v in FORWARD_VARS or v.startswith(FORWARD_PREFIXES)]
    if args.n is not None and "MX_WORLD_SIZE" not in names:
        names.append("MX_WORLD_SIZE")
    names.sort()
    if flavor == "openmpi":
        for v in names:
            cmd += ["-x", v]
    elif flavor == "mpich" and names:
        cmd += ["-genvlist", ",".join(names)]
    for extra in args.mpi_arg:
        cmd += shlex.split(extra)
    cmd.append(sys.executable)
    if args.module:
        cmd += ["-m", args.module]
    cmd += args.program
    return cmd


_TAKES_VALUE = {"-n", "--np", "--hostfile", "--hosts", "--mpirun", "--mpi-arg"}


def _split_program(argv):
    """(the launcher's arguments, the program's): the program starts at the first argument
    that is neither an option nor an option's value, or right after -m MODULE."""
    i = 0
    while i < len(argv):
        a = argv[i]
        if a in ("-m", "--module"):
            return argv[:i + 2], argv[i + 2:]
        if a.startswith("--module="):
            return argv[:i + 1], argv[i + 1:]
        if not a.startswith("-") or a == "-":
            return argv[:i], argv[i:]
        i += 2 if a in _TAKES_VALUE else 1
    return argv, []


def parse_args(argv):
    own, program = _split_program(list(argv))
    p = argparse.ArgumentParser(
        prog="python -m mx.launch",
        description="Run a Python program as N communicating processes (mx.distributed).")
    p.add_argument("-n", "--np", dest="n", type=int, default=None,
                   help="number of processes (default with a hostfile: one per slot)")
    p.add_argument("--hostfile", help="MPI hostfile or MLX JSON host list")
    p.add_argument("--hosts", help="comma-separated host names")
    p.add_argument("--mpirun", help="the MPI launcher (default: $MX_MPIRUN, mpirun, mpiexec)")
    p.add_argument("--mpi-arg", action="append", default=[],
                   help="extra arguments for mpirun (repeatable; split like a shell)")
    p.add_argument("-m", "--module", help="run a module (python -m MODULE) instead of a script")
    p.add_argument("--verbose", action="store_true", help="print the mpirun command")
    p.add_argument("--dry-run", action="store_true", help="print the mpirun command and exit")
    p.add_argument("program", nargs="*",
                   help="script.py and its arguments (or the module's arguments with -m)")
    args = p.parse_args(own)
    args.program = program
    if args.n is not None and args.n < 1:
        p.error(f"-n must be at least 1, got {args.n}")
    if args.n is None and not (args.hostfile or args.hosts):
        p.error("give the number of processes (-n) or the hosts (--hostfile/--hosts)")
    if not args.module:
        if not args.program:
            p.error("no program: give script.py (or -m module)")
        if not os.path.exists(args.program[0]) and not args.dry_run:
            p.error(f"no such script: {args.program[0]}")
    if args.hostfile and not os.path.exists(args.hostfile):
        p.error(f"no such hostfile: {args.hostfile}")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    mpirun = find_mpirun(args.mpirun)
    if mpirun is None:
        sys.stderr.write("mx.launch: no MPI launcher (mpirun/mpiexec) on PATH. Install Open MPI "
                         "(apt-get install openmpi-bin libopenmpi-dev) and mpi4py "
                         "(pip install mpi4py), or pass --mpirun.\n")
        return 2
    flavor = mpi_flavor(mpirun)
    temporary = []
    try:
        cmd = build_command(args, mpirun, flavor, temporary=temporary)
    except (OSError, ValueError) as e:
        sys.stderr.write(f"mx.launch: {e}\n")
        return 2
    if args.verbose or args.dry_run:
        print(shlex.join(cmd), flush=True)
    if args.dry_run:
        return 0      # the converted hostfile stays, for the printed command
    env = dict(os.environ)
    if args.n is not None:
        env["MX_WORLD_SIZE"] = str(args.n)
    try:
        rc = subprocess.run(cmd, env=env).returncode
    except KeyboardInterrupt:
        return 130
    finally:
        for path in temporary:
            os.unlink(path)
    return 128 - rc if rc < 0 else rc


if __name__ == "__main__":
    sys.exit(main())
