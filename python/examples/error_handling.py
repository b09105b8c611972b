"""Error handling patterns: every failure is a HologramError subclass that also derives
from the builtin a Python user would catch, with a message naming the value."""
import hologram_ffi as hg


def attempt(label, fn, *args):
    try:
        fn(*args)
    except hg.HologramError as exc:
        bases = [b.__name__ for b in type(exc).__mro__[1:3]]
        print(f"{label:34} {type(exc).__name__} ({', '.join(bases)}), status {exc.status}: "
              f"{exc}")
    except (TypeError, ValueError) as exc:
        print(f"{label:34} {type(exc).__name__}: {exc}")


def main():
    executor = hg.new_executor()
    buf = hg.executor_allocate_buffer(executor, 4)
    out = hg.executor_allocate_buffer(executor, 4)
    attempt("made-up handle", hg.buffer_length, 123456789)
    attempt("length past the end", hg.vector_add_f32, executor, buf, buf, out, 5)
    attempt("negative length", hg.vector_add_f32, executor, buf, buf, out, -1)
    attempt("float length", hg.vector_add_f32, executor, buf, buf, out, 2.5)
    attempt("malformed JSON", hg.buffer_copy_from_slice, executor, buf, "[1, 2,, 3]")
    attempt("too much JSON", hg.buffer_copy_from_slice, executor, buf, "[1, 2, 3, 4, 5]")
    attempt("clip with lo > hi", hg.vector_clip_f32, executor, buf, out, 4, 1.0, -1.0)
    attempt("absurd allocation", hg.executor_allocate_buffer, executor, 2 ** 40)
    attempt("bad boundary class", hg.executor_allocate_boundary_buffer, executor, 96, 1, 4)
    tensor = hg.tensor_from_buffer(buf, "[2, 2]")
    attempt("matmul shape mismatch", hg.tensor_matmul, executor, tensor,
            hg.tensor_from_buffer(out, "[4, 1]"))
    attempt("free a viewed buffer", hg.buffer_cleanup, buf)
    attempt("min of nothing", hg.reduce_min_f32, executor, buf, out, 0)
    hg.executor_cleanup(executor)
    attempt("double executor cleanup", hg.executor_cleanup, executor)

    try:                                   # catching by the builtin works too
        hg.buffer_length(0)
    except ValueError as exc:
        print(f"caught as ValueError: {exc!r}")


if __name__ == "__main__":
    main()
