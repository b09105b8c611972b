"""Executor and buffer management: several executors, linear and boundary buffers, what
cleanup frees, and the Executor context manager."""
import hologram_ffi as hg


def describe(buffer):
    return (f"pool={hg.buffer_pool(buffer)} length={hg.buffer_length(buffer)} "
            f"bytes={hg.buffer_size_bytes(buffer)} class={hg.buffer_class_index(buffer)} "
            f"linear={hg.buffer_is_linear(buffer)} boundary={hg.buffer_is_boundary(buffer)} "
            f"empty={hg.buffer_is_empty(buffer)}")


def main():
    executors = [hg.new_executor() for _ in range(3)]
    print(f"Executors: {[hex(e) for e in executors]}")
    first = executors[0]
    linear = hg.executor_allocate_buffer(first, 1000)
    empty = hg.executor_allocate_buffer(first, 0)
    boundary = hg.executor_allocate_boundary_buffer(first, 42, 48, 256)
    for name, b in (("linear", linear), ("empty", empty), ("boundary", boundary)):
        print(f"{name:8} {describe(b)}")

    hg.executor_cleanup(first)
    try:
        hg.buffer_length(linear)
    except hg.InvalidHandleError as exc:
        print(f"After executor_cleanup its buffers are gone: {exc}")
    for e in executors[1:]:
        hg.executor_cleanup(e)

    with hg.Executor() as ex:
        a = ex.allocate_buffer(4)
        ex.buffer_fill(a, 3.0, 4)
        print(f"Executor context: buffers {[hex(b) for b in ex.buffers]}, sum = {ex.reduce_sum_f32(a, a, 4)}")
    print(f"On exit the context freed everything (handle now {ex.handle})")


if __name__ == "__main__":
    main()
