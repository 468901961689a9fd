"""The audit trail: who ran what on which device, when, and what it said.

Off the device path: the controller and the workers add one record per submission and per
job end to a Redis stream (``stream``; one ``XADD``, in the pipeline that already publishes
the job's end). ``netpulse worker audit`` (``archiver``) reads the stream as a consumer
group and writes batches into the database (``database``, ``schema``, Alembic
``migrations``): SQLite in the data directory by default, PostgreSQL for several machines.
A record is acknowledged only once its batch is committed, so nothing is lost while the
archiver or the database is down (up to ``audit.stream_max_len`` records). ``query`` reads
the trail for ``GET /audit`` and the dashboard.
"""
