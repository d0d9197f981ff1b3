"""The C part of the node reader (app/journal/_fast.c), built by `pip install` (`make install`)
against Debian's libsystemd-dev and python3-dev; everything else is in pyproject.toml."""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension(
            "app.journal._fast",
            sources=["app/journal/_fast.c"],
            libraries=["systemd"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
        )
    ]
)
