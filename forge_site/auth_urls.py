from django.contrib.auth import views as auth_views
from django.urls import path

from forge_site.auth import LoginForm
from forge_site.roles import require_action

urlpatterns = [
    path(
        "login/",
        require_action("site.public")(auth_views.LoginView.as_view(authentication_form=LoginForm)),
        name="login",
    ),
    path("logout/", require_action("site.public")(auth_views.LogoutView.as_view()), name="logout"),
]
