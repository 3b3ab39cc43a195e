"""The evaluation report as files a person reads: ``view`` (numbers and tables worked out once), ``markdown``,
``html`` (with ``charts`` and ``thumbnails``), ``files`` (writing and reading them), ``checks`` and ``headless``
(the page as Chromium renders it)."""
