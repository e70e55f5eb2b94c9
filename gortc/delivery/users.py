"""/api/v1/users: the caller's profile, password, picture; others' profiles."""

from __future__ import annotations

from aiohttp import BodyPartReader, web

from gortc.delivery.auth import authenticate
from gortc.delivery.bodies import json_response, read_body, read_json
from gortc.delivery.files import blob_response
from gortc.delivery.keys import ACCOUNTS
from gortc.delivery.routing import ApiRoute
from gortc.delivery.schemas import PasswordChange, ProfileUpdate, UserPublic, UserSelf
from gortc.entities.errors import InvalidInput, TooLarge, UnsupportedMediaType
from gortc.usecases.accounts import AVATAR_MAX_BYTES


async def me(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    user = await request.app[ACCOUNTS].get_user(principal.user_id)
    return json_response(UserSelf.of(user))


async def update_me(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, ProfileUpdate)
    user = await request.app[ACCOUNTS].update_profile(
        principal.user_id,
        display_name=body.display_name,
        email=body.email,
        current_password=body.current_password,
    )
    return json_response(UserSelf.of(user))


async def change_password(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    body = await read_json(request, PasswordChange)
    await request.app[ACCOUNTS].change_password(
        principal.user_id,
        current_password=body.current_password,
        new_password=body.new_password,
        session_id=principal.session_id,
    )
    return web.Response(status=204)


async def put_avatar(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    data = await _read_image(request)
    user = await request.app[ACCOUNTS].set_avatar(principal.user_id, data)
    return json_response(UserSelf.of(user))


async def _read_image(request: web.Request) -> bytes:
    """The picture from a multipart field ``file``, or the raw body; reading
    stops one byte past the limit, so a huge upload is never held whole."""
    if request.content_length is not None and request.content_length > AVATAR_MAX_BYTES + 65536:
        raise TooLarge("the picture must be at most 2 MB", code="avatar_too_large")
    if request.content_type == "multipart/form-data":
        try:
            reader = await request.multipart()
            async for part in reader:
                if isinstance(part, BodyPartReader) and part.name == "file":
                    return await _read_limited(part)
        except (ValueError, AssertionError) as exc:
            raise InvalidInput(f"the multipart body is malformed: {exc}") from None
        raise InvalidInput("send the picture in a form field named 'file'", code="missing_file")
    if request.content_type.startswith("image/"):
        data = await read_body(request, AVATAR_MAX_BYTES)
        if not data:
            raise InvalidInput("the picture is empty", code="missing_file")
        return data
    raise UnsupportedMediaType("send the picture as multipart/form-data or as an image body")


async def _read_limited(part: BodyPartReader) -> bytes:
    chunks = []
    size = 0
    while chunk := await part.read_chunk(65536):
        size += len(chunk)
        if size > AVATAR_MAX_BYTES:
            raise TooLarge("the picture must be at most 2 MB", code="avatar_too_large")
        chunks.append(chunk)
    if size == 0:
        raise InvalidInput("the picture is empty", code="missing_file")
    return b"".join(chunks)


async def delete_avatar(request: web.Request) -> web.Response:
    principal = await authenticate(request)
    await request.app[ACCOUNTS].remove_avatar(principal.user_id)
    return web.Response(status=204)


async def get_user(request: web.Request) -> web.Response:
    await authenticate(request)
    user = await request.app[ACCOUNTS].get_user(request.match_info["user_id"])
    return json_response(UserPublic.of(user))


async def get_avatar(request: web.Request) -> web.StreamResponse:
    await authenticate(request)
    location, served = await request.app[ACCOUNTS].avatar(
        request.match_info["user_id"], "private, max-age=86400"
    )
    return blob_response(location, served)


_TAG = "users"
_ME = "/api/v1/users/me"
_IMAGE_UPLOAD = {
    "multipart/form-data": {
        "schema": {
            "type": "object",
            "properties": {"file": {"type": "string", "contentMediaType": "image/*"}},
            "required": ["file"],
        }
    },
    "image/*": {"schema": {"type": "string", "contentMediaType": "image/*", "minLength": 1}},
}

ROUTES = [
    ApiRoute("GET", _ME, me, "Who am I", _TAG, response=UserSelf, errors=(401,)),
    ApiRoute(
        "PATCH",
        _ME,
        update_me,
        "Change display name or email",
        _TAG,
        request=ProfileUpdate,
        response=UserSelf,
        errors=(400, 401, 403, 409),
        description="Changing the email needs current_password and a new verification.",
    ),
    ApiRoute(
        "POST",
        f"{_ME}/password",
        change_password,
        "Change password",
        _TAG,
        status=204,
        request=PasswordChange,
        errors=(400, 401, 403),
        description="Every other sign-in of the account ends.",
    ),
    ApiRoute(
        "PUT",
        f"{_ME}/avatar",
        put_avatar,
        "Set the profile picture",
        _TAG,
        request_content=_IMAGE_UPLOAD,
        response=UserSelf,
        errors=(400, 401, 413, 415),
        description="PNG, JPEG or WebP (checked by content), at most 2 MB.",
    ),
    ApiRoute(
        "DELETE",
        f"{_ME}/avatar",
        delete_avatar,
        "Remove the profile picture",
        _TAG,
        status=204,
        errors=(401,),
    ),
    ApiRoute(
        "GET",
        "/api/v1/users/{user_id}",
        get_user,
        "A user's public profile",
        _TAG,
        response=UserPublic,
        errors=(401, 404),
    ),
    ApiRoute(
        "GET",
        "/api/v1/users/{user_id}/avatar",
        get_avatar,
        "A user's picture",
        _TAG,
        response_content_type="image/*",
        errors=(401, 404),
    ),
]
