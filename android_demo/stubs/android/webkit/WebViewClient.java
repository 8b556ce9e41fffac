package android.webkit;

public class WebViewClient {
    public WebResourceResponse shouldInterceptRequest(WebView view, WebResourceRequest request) { throw new RuntimeException("Stub!"); }
    public boolean onRenderProcessGone(WebView view, RenderProcessGoneDetail detail) { throw new RuntimeException("Stub!"); }
}
