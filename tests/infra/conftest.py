"""infra/ tests reuse the deployment fixtures (a store with registered wine classifiers, private Bento and
deployment directories)."""

from tests.deploy.conftest import deploy_env  # noqa: F401
