"""Who may call the API: roles, and evidence downloads refused to other sites."""

from typing import Any
from urllib.parse import urlsplit

from rest_framework import authentication, permissions
from rest_framework.request import Request

from workflows import selectors


def request_is_cross_site(request: Request) -> bool:
    """Return whether the browser sent this request on another site's behalf.

    ``Sec-Fetch-Site`` decides when the browser sends it: only the service's own pages
    (``same-origin``) and a typed or bookmarked address (``none``) count as this site. Older
    browsers send no such header; then an ``Origin`` or ``Referer`` of another host decides.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if fetch_site:
        return fetch_site not in ("same-origin", "none")
    for header in ("Origin", "Referer"):
        value = request.headers.get(header, "").strip()
        if value:
            return value == "null" or urlsplit(value).netloc.lower() != request.get_host().lower()
    return False


class NotCrossSite(permissions.BasePermission):
    """Evidence files go to a logged-in browser only when it asks on the service's own behalf.

    A link or image on another site would otherwise make a reviewer's browser fetch an original
    with their session, and record the download in their name. Token clients send no cookies
    and are not affected.
    """

    message = "Evidence files are not sent to requests from another site; open the link from the desk."
    code = "cross_site_request"

    def has_permission(self, request: Request, view: Any) -> bool:
        if not isinstance(request.successful_authenticator, authentication.SessionAuthentication):
            return True
        return not request_is_cross_site(request)


class HasWorkflowRole(permissions.BasePermission):
    """Only people with a role (analyst, reviewer, lead) may open cases or submit media.

    Actions on one case need no check here: a case the user may not see answers 404 first,
    and the workflow services check the role each move needs.
    """

    message = "Your account has no role in this service; ask a lead to give you one."

    def has_permission(self, request: Request, view: Any) -> bool:
        return getattr(view, "action", None) != "create" or bool(selectors.user_roles(request.user))


def visible_case_ids(request: Request) -> Any:
    return selectors.case_list_for_user(user=request.user).values("pk")


def valid_input(serializer_class: Any, request: Request, *, context: dict[str, Any] | None = None) -> Any:
    serializer = serializer_class(data=request.data, context=context or {})
    serializer.is_valid(raise_exception=True)
    return serializer.validated_data
