"""The performance benchmark behind ``manage.py benchmark``.

It measures the project's own code paths against ffmpeg's floor on a generated reference clip
(``analysis``), the web process's memory while a large file streams in (``upload``) and the
polling endpoint under load (``status``), each inside a throwaway environment
(``sandbox``), and prints the results as a Markdown table (``report``).
"""
