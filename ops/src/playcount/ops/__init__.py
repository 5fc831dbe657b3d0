"""Operations on a running Playcount: bootstrap, DLQ tools, pipeline status, quarantine replay.

Imported by the operator's CLI (`playcount`) and the query API's admin and status routes only;
the workers never import it.
"""
