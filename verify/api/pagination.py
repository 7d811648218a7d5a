"""Pagination for list endpoints."""

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """Numbered pages; scripts may ask for up to 500 rows with ``page_size``."""

    page_size_query_param = "page_size"
    max_page_size = 500
