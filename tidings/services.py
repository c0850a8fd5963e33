"""The long-lived parts a web request works with: the settings, the store, the dispatcher
and the throttle on failed authentication.

``create_app`` makes them once and keeps them on ``app.state``; routes, the API's and the
dashboard's alike, take them as the FastAPI dependencies below.
"""

from typing import Annotated, cast

from fastapi import Depends, FastAPI, Request

from tidings.dispatch import Dispatcher
from tidings.settings import Settings
from tidings.store import Store
from tidings.throttle import AuthThrottle


def keep(app: FastAPI, settings: Settings, store: Store, dispatcher: Dispatcher) -> None:
    app.state.settings = settings
    app.state.store = store
    app.state.dispatcher = dispatcher
    app.state.throttle = AuthThrottle(store.redis)


def settings(request: Request) -> Settings:
    return cast(Settings, request.app.state.settings)


def store(request: Request) -> Store:
    return cast(Store, request.app.state.store)


def dispatcher(request: Request) -> Dispatcher:
    return cast(Dispatcher, request.app.state.dispatcher)


def throttle(request: Request) -> AuthThrottle:
    return cast(AuthThrottle, request.app.state.throttle)


# As dependencies they are coroutines: FastAPI runs a plain function in a worker thread, a
# thread hop for each on every request (~0.1 ms each on a 2-core machine).


async def _settings(request: Request) -> Settings:
    return settings(request)


async def _store(request: Request) -> Store:
    return store(request)


async def _dispatcher(request: Request) -> Dispatcher:
    return dispatcher(request)


async def _throttle(request: Request) -> AuthThrottle:
    return throttle(request)


SettingsDep = Annotated[Settings, Depends(_settings)]
StoreDep = Annotated[Store, Depends(_store)]
DispatcherDep = Annotated[Dispatcher, Depends(_dispatcher)]
ThrottleDep = Annotated[AuthThrottle, Depends(_throttle)]
