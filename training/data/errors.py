"""The error every data source raises for a problem the user can fix (exit code 2 in the CLI).

from training.data.errors import SourceError
raise SourceError("classes missing in /data/imagenet: n03085013 (computer keyboard)")
"""


class SourceError(Exception):
    """A folder, URL list or archive can't provide the dataset asked for; the message says why."""
