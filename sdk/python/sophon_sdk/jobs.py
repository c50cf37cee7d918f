"""Running code as sandboxed jobs (``sophon:host/jobs``)."""

from ._host import call, wit_module


_BINDINGS = wit_module("jobs")


def _wit():
    return _BINDINGS


def _whole(value, name: str) -> int:
    """``value`` as an int; a fraction or a non-number raises naming the setting (a wrong type
    passed on to the host would trap the plugin instead)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not float(value).is_integer():
        raise TypeError(f"jobs.spec().{name}() takes a whole number, got {value!r}")
    return int(value)


class Spec:
    """A job under construction: ``jobs.spec("fit", ["python", "main.py"]).file("main.py", code)
    .mount_task_data("/data").timeout_ms(60_000).output("submission.csv")``."""

    def __init__(self, name: str, command: list[str]):
        self.name = name
        self.command = list(command)
        self.files = []
        self.env_ = []
        self.mounts = []
        self.outputs = []
        self.cpus_ = None
        self.gpus_ = 0
        self.memory_mb_ = None
        self.timeout_ms_ = None
        self.backend_ = None

    def file(self, path: str, text: str, executable: bool = False) -> "Spec":
        w = _wit()
        self.files.append(w.JobFile(path=path, contents=w.FileContents_Text(text), executable=executable))
        return self

    def env(self, key: str, value: str) -> "Spec":
        self.env_.append((str(key), str(value)))
        return self

    def cpus(self, cpus: int) -> "Spec":
        self.cpus_ = _whole(cpus, "cpus")
        return self

    def gpus(self, gpus: int) -> "Spec":
        self.gpus_ = _whole(gpus, "gpus")
        return self

    def memory_mb(self, mb: int) -> "Spec":
        self.memory_mb_ = mb
        return self

    def timeout_ms(self, ms: int) -> "Spec":
        self.timeout_ms_ = ms
        return self

    def backend(self, name: str) -> "Spec":
        self.backend_ = name
        return self

    def mount_task_data(self, target: str) -> "Spec":
        """Mount the task's public data read-only at ``target``."""
        w = _wit()
        self.mounts.append(w.Mount(source=w.MountSource_TaskPublic(), target=target))
        return self

    def output(self, path: str) -> "Spec":
        """Collect ``path`` (relative to the working directory) as an artifact when the job ends."""
        self.outputs.append(path)
        return self

    def build(self):
        w = _wit()
        return w.JobSpec(
            name=self.name,
            files=self.files,
            command=self.command,
            env=self.env_,
            resources=w.Resources(
                cpus=self.cpus_,
                gpus=self.gpus_,
                gpu_kind=None,
                memory_mb=self.memory_mb_,
                timeout_ms=self.timeout_ms_,
            ),
            mounts=self.mounts,
            outputs=self.outputs,
            backend=self.backend_,
        )


def spec(name: str, command: list[str]) -> Spec:
    return Spec(name, command)


def submit(job_spec):
    """Queue a job (a :class:`Spec` or a WIT ``JobSpec``); returns its handle."""
    built = job_spec.build() if isinstance(job_spec, Spec) else job_spec
    return call(_wit().submit, built)


def wait(job):
    """Block until ``job`` has ended; its result."""
    while True:
        result = job.get()
        if result is not None:
            return result
        job.subscribe().block()


def run(job_spec):
    """Submit and wait: the job's result (``.state``, ``.stdout.head``, ``.artifacts``, ...)."""
    return wait(submit(job_spec))


def succeeded(result) -> bool:
    return result.state == _wit().JobState.SUCCEEDED


def artifact(result, name: str) -> str | None:
    """The collected output ``name`` as an artifact id."""
    return next((a.id for a in result.artifacts if a.name == name), None)


def stdout_lines_with(result, prefix: str) -> list[str]:
    """Lines of stdout (head, then tail) starting with ``prefix``, the prefix removed."""
    lines = (result.stdout.head + "\n" + result.stdout.tail).splitlines()
    return [line[len(prefix):].strip() for line in lines if line.startswith(prefix)]


def failure(result, lines: int = 20) -> str:
    """Why the job failed, for a node summary or a debug prompt: state, message, stderr tail."""
    text = result.stderr.tail or result.stderr.head
    if not text.strip():
        text = result.stdout.tail or result.stdout.head
    tail = "\n".join(text.splitlines()[-lines:])
    state = result.state.name.lower().replace("_", "-")
    return f"the job ended {state}: {result.message}\n{tail}"


def inventory():
    """Resources this plugin may use right now."""
    return _wit().inventory()
