package android.webkit;

import android.content.Context;
import android.view.View;

public class WebView extends View {
    public WebView(Context context) { throw new RuntimeException("Stub!"); }
    public WebSettings getSettings() { throw new RuntimeException("Stub!"); }
    public void setWebViewClient(WebViewClient client) { throw new RuntimeException("Stub!"); }
    public void setWebChromeClient(WebChromeClient client) { throw new RuntimeException("Stub!"); }
    public void loadUrl(String url) { throw new RuntimeException("Stub!"); }
    public void onPause() { throw new RuntimeException("Stub!"); }
    public void onResume() { throw new RuntimeException("Stub!"); }
    public void destroy() { throw new RuntimeException("Stub!"); }
}
