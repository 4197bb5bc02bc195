from django.contrib import admin
from django.http import HttpResponse, StreamingHttpResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt


def hello(request):
    return HttpResponse("Hello from Django at %s (script %s)" % (request.path, request.META["SCRIPT_NAME"]),
                        content_type="text/plain")


def stream(request):
    return StreamingHttpResponse((b"chunk%d\n" % i for i in range(3)), content_type="text/plain")


@csrf_exempt
def upload(request):
    f = request.FILES["file"]
    return HttpResponse("%s %d %s" % (f.name, f.size, request.POST.get("note", "")), content_type="text/plain")


urlpatterns = [
    path("admin/", admin.site.urls),
    path("hello/", hello),
    path("stream/", stream),
    path("upload/", upload),
]
