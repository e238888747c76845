"""traces/: the one trace type, its file formats, generators and datasets.

>>> from traces import Trace, read_trace, load_traces
"""

from traces.errors import TraceFormatError
from traces.io import FORMATS, convert, detect_format, load_traces, read_trace, write_trace
from traces.trace import Trace

__all__ = ["Trace", "TraceFormatError", "FORMATS", "read_trace", "write_trace", "load_traces",
           "convert", "detect_format"]
