"""Reading what a running test process has written to its output file."""


def complete_lines(data, writing):
    """data's lines, decoded.  When its writer is still writing (ask before
    reading data), the text after the last newline is not a line yet: a
    reader of a regular file can see half of a write()."""
    if writing:
        data = data[:data.rfind(b"\n") + 1]
    return data.decode("utf-8").splitlines()
